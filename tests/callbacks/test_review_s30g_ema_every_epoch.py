"""Lightning's EMAWeightAveraging listed before CausalAuditCallback was warned about ("the averaging swaps its averaged
weights in before the fit-end audit") also with every_n_epochs=1, where no fit-end audit runs: every epoch a fit ends
in, also one cut short by max_steps, is audited at its end on the trained weights, before the averaging swaps at
training's end. Now warned only where an epoch is off the schedule (every_n_epochs=2 of 3 epochs: the fit-end audit of
epoch 2 explains the averaged weights, still warned)."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.causal import input_effects
from lightning_causal.models import LightningClassifier

callbacks = pytest.importorskip("lightning.pytorch.callbacks")
if not hasattr(callbacks, "EMAWeightAveraging"):
    pytest.skip("EMAWeightAveraging needs Lightning >= 2.6", allow_module_level=True)


def _fit(tmp_path, every_n_epochs, max_steps=-1):
    pl.seed_everything(0, verbose=False)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    torch.manual_seed(0)
    module = LightningClassifier(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)), lr=0.1, optimizer="sgd")
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None, target=0)], every_n_epochs=every_n_epochs, probe_size=16,
                                report_dir=str(tmp_path / "reports"))
    trainer = pl.Trainer(max_epochs=3, max_steps=max_steps, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[callbacks.EMAWeightAveraging(decay=0.5), audit])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, data, data)
    explained = audit.last_results["input_effect"].scalars["mean_abs_effect"]
    averaged = input_effects(module, x[:16], target=0).abs().mean().item()  # the weights the averaging swapped in
    warned = any("comes after EMAWeightAveraging" in str(w.message) for w in caught)
    return warned, audit.audited_epochs, explained, averaged


@pytest.mark.parametrize("max_steps", [-1, 6])  # 4 steps an epoch: 6 ends the fit in epoch 1
def test_every_epoch_on_the_schedule_is_not_warned(tmp_path, max_steps):
    warned, epochs, explained, averaged = _fit(tmp_path, 1, max_steps)
    assert epochs == ([0, 1, 2] if max_steps == -1 else [0, 1])  # the epoch the fit ends in, audited at its end
    assert explained != pytest.approx(averaged, rel=1e-3)  # on the trained weights: the premise of no warning
    assert not warned  # before: warned


def test_an_epoch_off_the_schedule_is_still_warned(tmp_path):
    warned, epochs, explained, averaged = _fit(tmp_path, 2)
    assert epochs == [1, 2]  # 2 by the fit-end audit, on the averaged weights
    assert explained == pytest.approx(averaged, rel=1e-6)
    assert warned
