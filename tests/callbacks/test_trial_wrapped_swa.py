"""StochasticWeightAveraging beside CausalAuditCallback: which weights the fit-end audit explains."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch import callbacks as lightning_callbacks
from lightning.pytorch.callbacks import StochasticWeightAveraging
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.causal import input_effects
from lightning_causal.models import LightningClassifier


def _fit(tmp_path, swa_first, kind="swa"):
    pl.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    torch.manual_seed(0)
    module = LightningClassifier(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)), lr=0.1, optimizer="sgd")
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None, target=0)], every_n_epochs=2, probe_size=16,
                                report_dir=str(tmp_path / "reports"))  # audits epoch 1, and epoch 2 at the end of fit
    swa = (StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=1) if kind == "swa"
           else lightning_callbacks.EMAWeightAveraging(decay=0.5))
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[swa, audit] if swa_first else [audit, swa])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, data, data)
    explained = audit.last_results["input_effect"].scalars["mean_abs_effect"]
    final = input_effects(module, x[:16], target=0).abs().mean().item()  # the averaged weights, after fit
    return [str(w.message) for w in caught], explained, final


KINDS = ["swa"] + (["ema"] if hasattr(lightning_callbacks, "EMAWeightAveraging") else [])


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kind", KINDS)
def test_averaging_listed_before_the_audit_is_named_at_set_up(tmp_path, kind):
    name = "StochasticWeightAveraging" if kind == "swa" else "EMAWeightAveraging"
    messages, explained, final = _fit(tmp_path / "a", swa_first=True, kind=kind)
    # the fit-end audit explained the averaged weights (unlike the docstring's promise); before: no word of it
    assert explained == pytest.approx(final, rel=1e-5)
    assert any(f"comes after {name}" in m and "averaged weights" in m for m in messages)
    messages, explained, final = _fit(tmp_path / "b", swa_first=False, kind=kind)
    assert explained != pytest.approx(final, rel=1e-3)  # the trained weights, as documented
    assert not any(name in m for m in messages)
