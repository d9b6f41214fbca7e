"""A final read of 623522e7: the sentence naming diverged weights blamed Adam's default ``eps`` (0 in float16) whenever
the non-finite weights were float16, also for a ``LightningClassifier`` or a ``CausalRepairModule`` under ``"16-true"``,
whose Adam now takes ``eps=1e-4``. The callback reads its fit's optimizers' ``eps``: where they hold 1e-4 or more (or no
``eps``, SGD), the hint is left out; where nothing says, it is worded "if the optimizer keeps torch's default eps"."""

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.callbacks._one_audit import non_finite_weights
from lightning_causal.models import LightningClassifier

_ADAM = "if the optimizer keeps torch's default eps"


def _broken_half() -> nn.Module:
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).half()
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    return net


def test_the_hint_follows_the_optimizers_eps():
    assert f"; {_ADAM}: float16 weights" in non_finite_weights(_broken_half())  # no optimizer known
    assert _ADAM in non_finite_weights(_broken_half(), eps=1e-8)
    assert "eps" not in non_finite_weights(_broken_half(), eps=1e-4)  # before: Adam's default blamed
    assert "eps" not in non_finite_weights(_broken_half(), eps=float("inf"))  # SGD: no eps to blame


class _NanAfterTraining(pl.Callback):
    """A weight made NaN after each training step, as a diverged fit leaves it."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        with torch.no_grad():
            next(pl_module.parameters())[0, 0] = float("nan")


class _OwnAdam(LightningClassifier):
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)  # torch's default eps


def _warned(module: pl.LightningModule, root) -> str:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, report_dir=None)
    trainer = pl.Trainer(max_epochs=1, precision="16-true", callbacks=[_NanAfterTraining(), callback], logger=False,
                         default_root_dir=root, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16))
    said = [str(w.message) for w in caught if "the model's weights hold NaN or infinite values (model.0.weight" in str(w.message)]
    assert said, [str(w.message) for w in caught]
    return " ".join(said)


def test_the_callback_reads_its_fits_eps(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    said = _warned(LightningClassifier(net, lr=1e-2), tmp_path)  # its Adam takes 1e-4: before, blamed
    assert _ADAM not in said and "default eps" not in said  # (the non-finite note may name RevIN's std "without an eps")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert _ADAM in _warned(_OwnAdam(net, lr=1e-2), tmp_path)


def test_the_report_and_the_card_read_one_precision(tmp_path, monkeypatch):
    """The precision of an audit epoch is read once and given to the JSON report and to the card (before: read twice)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    import lightning_causal.callbacks._audit_run as audit_run

    read = []
    monkeypatch.setattr(audit_run, "audit_precision", lambda *a, **k: read.append(1) or {
        "weights": "float32", "other_weights": [], "autocast": None, "trainer": "32-true"})
    torch.manual_seed(0)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, report_dir=tmp_path / "reports")
    pl.Trainer(max_epochs=1, callbacks=[callback], logger=TensorBoardLogger(tmp_path, name="", version=""),
               default_root_dir=tmp_path, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(LightningClassifier(nn.Sequential(nn.Linear(4, 2)), lr=1e-2),
                                               DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16))
    assert callback.audited_epochs == [0] and len(read) == 1  # before: 2
