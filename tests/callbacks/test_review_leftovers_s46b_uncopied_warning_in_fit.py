"""c8023ce4 pointed the warning that an audit's passes wrote into an uncopied helper object (past the copy budget) at
the user's line: checked there on ``audit_mode`` called directly. Inside ``trainer.fit``, where the callback's audit
runs under Lightning's frames, it named ``lightning_causal/causal/engine/state.py`` before; it names the ``fit`` line
now (user_frame.outside_package passes over Lightning's frames too)."""

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.causal.engine import kept_attributes
from tests.helpers.lightning import quick_trainer


class _Record:
    """A user's helper object of 1 KB, past a budget of 100 bytes: unwritten at the first audit (then not copied),
    written by the forward from the second epoch on."""

    def __init__(self) -> None:
        self.acc, self.on = torch.zeros(256), False


_Record.__module__ = "user_model"


class _Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.rec = nn.Linear(5, 8), nn.Linear(8, 3), _Record()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.l1(x).relu()
        if self.rec.on:
            with torch.no_grad():
                self.rec.acc[:8] += h.detach().mean(0)
        return self.l2(h)

    def on_train_epoch_start(self) -> None:
        self.rec.on = self.current_epoch >= 1

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_uncopied_helper_warning_names_the_fit_line(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(kept_attributes, "KEPT_HELPER_BYTES", 100)
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(32, 5), torch.randint(0, 3, (32,)))
    trainer = quick_trainer(max_epochs=2, num_sanity_val_steps=0, default_root_dir=tmp_path,
                            callbacks=[CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8,
                                                           every_n_epochs=1)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_Net(), DataLoader(data, batch_size=16))
    found = [w for w in caught if "helper object 'rec'" in str(w.message)]
    assert len(found) == 1, [str(w.message)[:80] for w in caught]
    assert found[0].filename == __file__, found[0].filename
