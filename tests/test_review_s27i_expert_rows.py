"""newuser48's trial (discrete routing), the part a user meets most: a UnitImportanceAudit naming an expert layer of a
mixture (a module run only on the rows routed to it) passed set-up when both dry-run samples were routed to it, then
stopped the fit at the first audit, the engine's message speaking of batch_first=False first. Set-up now checks the
layers on a pass of the whole probe, and the engine's message says the layer returned fewer rows than the batch."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalAuditCallback, UnitImportanceAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import unit_effects


class _Routed(pl.LightningModule):
    """Hard routing on the sign of feature 0: expert 1 runs on the rows whose feature 0 is positive."""

    def __init__(self) -> None:
        super().__init__()
        self.experts = nn.ModuleList(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        choice = (x[:, 0] > 0).long()
        out = x.new_zeros(x.shape[0], 2)
        for e, expert in enumerate(self.experts):
            rows = (choice == e).nonzero().flatten()
            out = out.index_add(0, rows, expert(x[rows]))
        return out

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data() -> torch.utils.data.DataLoader:
    torch.manual_seed(0)
    x = torch.randn(40, 4)
    x[:2, 0] = x[:2, 0].abs() + 0.1  # the first two samples (the dry run's) go to expert 1
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 1] > 0).long()), batch_size=20)


def test_an_expert_layer_is_refused_at_set_up_naming_the_fewer_rows(tmp_path) -> None:
    x = _data().dataset.tensors[0][:16]
    routed = int((x[:, 0] > 0).sum())  # the rows expert 1 sees in a pass of the 16 probe samples
    assert 2 < routed < 16
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path,
                         callbacks=[CausalAuditCallback([UnitImportanceAudit(["experts.1.1"], unit_dim=-1)], probe_size=16,
                                                              report_dir=tmp_path / "audit")])
    with pytest.raises(MisconfigurationException) as err:
        trainer.fit(_Routed(), _data(), _data())
    assert trainer.global_step == 0  # before: raised at the first audit, after training steps (RuntimeError)
    message = str(err.value)
    assert "'experts.1.1'" in message and f"shape [{routed}, 8]: {routed} row(s), fewer than the batch" in message
    assert "an expert of a mixture" in message and "where the experts' outputs are combined" in message
    assert "expert units example" in message and "batch_first" not in message


def test_the_engine_refuses_an_expert_saying_it_saw_fewer_rows() -> None:
    model = _Routed().eval()
    x = torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [2.0, 0, 0, 0]])  # expert 1 sees 2 rows of 3
    with pytest.raises(ValueError, match=r"shape \[2, 8\]: 2 row\(s\), fewer than the batch, .*an expert of a mixture") as err:
        unit_effects(model, x, "experts.1.1", unit_dim=-1)
    assert "batch_first" not in str(err.value)  # before: the message began with batch_first=False layers


def test_the_set_up_check_runs_the_whole_probe() -> None:
    model, x = _Routed().eval(), _data().dataset.tensors[0][:16]
    with pytest.raises(ValueError, match="fewer than the batch"):
        UnitImportanceAudit(["experts.1.1"], unit_dim=-1).validate(model, Probe(x))
    UnitImportanceAudit(["experts.1.1"], unit_dim=-1).validate(model, Probe(x[:2]))  # both rows routed to expert 1


def test_the_causal_graph_audit_checks_its_layers_on_the_whole_probe_too() -> None:
    from lightning_causal import CausalGraphAudit

    model, x = _Routed().eval(), _data().dataset.tensors[0][:16]
    audit = CausalGraphAudit(["experts.1.0", "experts.1.1"], top_k=2, unit_dim=-1)
    with pytest.raises(ValueError, match=r"'experts\.1\.0'.*fewer than the batch"):  # before: no error at set-up
        audit.validate(model, Probe(x))
    audit.validate(model, Probe(x[:2]))  # both rows routed to expert 1
