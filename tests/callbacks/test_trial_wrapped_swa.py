"""StochasticWeightAveraging beside CausalAuditCallback: which weights the fit-end audit explains."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import StochasticWeightAveraging
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.causal import input_effects
from lightning_causal.models import LightningClassifier


def _fit(tmp_path, swa_first):
    pl.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    torch.manual_seed(0)
    module = LightningClassifier(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)), lr=0.1, optimizer="sgd")
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None, target=0)], every_n_epochs=2, probe_size=16,
                                report_dir=str(tmp_path / "reports"))  # audits epoch 1, and epoch 2 at the end of fit
    swa = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=1)
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[swa, audit] if swa_first else [audit, swa])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, data, data)
    explained = audit.last_results["input_effect"].scalars["mean_abs_effect"]
    final = input_effects(module, x[:16], target=0).abs().mean().item()  # the averaged weights, after fit
    return [str(w.message) for w in caught], explained, final


@pytest.mark.filterwarnings("ignore")
def test_averaging_listed_before_the_audit_is_named_at_set_up(tmp_path):
    messages, explained, final = _fit(tmp_path / "a", swa_first=True)
    # the fit-end audit explained the averaged weights (unlike the docstring's promise); before: no word of it
    assert explained == pytest.approx(final, rel=1e-5)
    assert any("comes after StochasticWeightAveraging" in m and "averaged weights" in m for m in messages)
    messages, explained, final = _fit(tmp_path / "b", swa_first=False)
    assert explained != pytest.approx(final, rel=1e-3)  # the trained weights, as documented
    assert not any("StochasticWeightAveraging" in m for m in messages)
