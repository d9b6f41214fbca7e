"""AuditModelCheckpoint beside Lightning's EMAWeightAveraging (newuser59 trial: shipping the best audited checkpoint).

The audits explain the trained weights (the averaging swaps its average in for validation only), but
``WeightAveraging.on_save_checkpoint`` writes the average into every checkpoint's ``state_dict`` and the trained weights
under ``current_model_state``. The best checkpoint, chosen by ``mean_abs_effect`` = 0.1858 of the trained weights,
loaded as ``load_from_checkpoint`` loads it and audited, gave 0.1657: AuditModelCheckpoint's docstring said "the saved
weights are the audited ones", and nothing warned. Set-up now warns, naming ``current_model_state``, which gives the
score back."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch import callbacks as lightning_callbacks
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    AuditModelCheckpoint,
    CausalAuditCallback,
    InputEffectAudit,
    audit_model,
)
from lightning_causal.models import LightningClassifier

pytestmark = pytest.mark.skipif(not hasattr(lightning_callbacks, "EMAWeightAveraging"), reason="Lightning < 2.6")

X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()
MONITOR = "causal/input_effect/mean_abs_effect"


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def _explained(state: dict) -> float:
    module = LightningClassifier(_net())
    module.load_state_dict(state)
    data = DataLoader(TensorDataset(X, Y), batch_size=16)
    return audit_model(module, [InputEffectAudit(ace_values=None, target=0)], data, probe_size=16)[0].scalars["mean_abs_effect"]


def test_averaged_checkpoints_are_warned_of_and_current_model_state_holds_the_audited_weights(tmp_path):
    pl.seed_everything(0, verbose=False)
    module = LightningClassifier(_net(), lr=0.1, optimizer="sgd")
    best = AuditModelCheckpoint(MONITOR, mode="max", dirpath=tmp_path / "ckpt", filename="best")
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path,
                         callbacks=[CausalAuditCallback([InputEffectAudit(ace_values=None, target=0)], probe_size=16,
                                                        report_dir=str(tmp_path / "reports")),
                                    lightning_callbacks.EMAWeightAveraging(decay=0.5), best])
    data = DataLoader(TensorDataset(X, Y), batch_size=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, data, data)
    said = [str(w.message) for w in caught if "AuditModelCheckpoint" in str(w.message) and "current_model_state" in str(w.message)]
    assert len(said) == 1 and "EMAWeightAveraging" in said[0]  # before: no warning
    checkpoint = torch.load(best.best_model_path, weights_only=True)
    score = float(best.best_model_score)
    assert _explained(checkpoint["current_model_state"]) == pytest.approx(score, rel=1e-5)  # the audited weights
    assert _explained(checkpoint["state_dict"]) != pytest.approx(score, rel=1e-3)  # the average


@pytest.mark.filterwarnings("ignore")
def test_no_word_without_averaging(tmp_path):
    best = AuditModelCheckpoint(MONITOR, mode="max", dirpath=tmp_path / "ckpt")
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path,
                         callbacks=[CausalAuditCallback([InputEffectAudit(ace_values=None, target=0)], probe_size=16,
                                                        report_dir=str(tmp_path / "reports")), best])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(LightningClassifier(_net()), DataLoader(TensorDataset(X, Y), batch_size=16))
    assert not [w for w in caught if "current_model_state" in str(w.message)]
