"""newuser48's trial (discrete routing): a Gumbel-softmax gate whose temperature anneals with a count of forward
calls kept as a plain number attribute (``self.calls += 1`` in ``forward``, read as ``tau = max(0.5, 2 * 0.99 ** calls)``)
trained to other weights with CausalAuditCallback than without it: the audits' forward passes were counted, so training
went on at a lower temperature. ``no_trace`` put back tensors kept as attributes, not numbers."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CausalAuditCallback, UnitImportanceAudit
from lightning_causal.callbacks._no_trace import no_trace


class _GumbelGate(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0  # a plain number, as annealing code keeps it
        self.scale = 1.0
        self.enc = nn.Linear(4, 6)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.scale = self.scale * 0.99
        tau = max(0.5, 2.0 * 0.99**self.calls)
        gates = F.gumbel_softmax(self.enc(x).view(-1, 3, 2), tau=tau, hard=True)[..., 0]  # [N, 3] of 0/1
        return self.head(gates)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(callbacks: list, root) -> _GumbelGate:
    pl.seed_everything(0)
    x = torch.randn(48, 4)
    y = (x[:, 0] > 0).long()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    model = _GumbelGate()
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=callbacks, default_root_dir=root)
    trainer.fit(model, data, data)
    return model


def test_a_call_counter_in_forward_is_not_advanced_by_the_audits(tmp_path) -> None:
    audited = _fit([CausalAuditCallback([UnitImportanceAudit(["enc"])], every_n_epochs=1, probe_size=8)], tmp_path)
    plain = _fit([], tmp_path)
    assert audited.calls == plain.calls == 14  # 2 sanity-check batches, then 3 training and 3 validation batches an epoch;
    # before: 63 with the audits (their passes counted)
    for a, b in zip(audited.state_dict().values(), plain.state_dict().values()):
        assert torch.equal(a, b)


def test_no_trace_puts_back_numbers_the_forward_changes() -> None:
    m = _GumbelGate()
    with no_trace(m):
        m(torch.randn(5, 4))
        assert m.calls == 1 and m.scale == 0.99
    assert m.calls == 0 and type(m.calls) is int and m.scale == 1.0  # before: 1 and 0.99
