"""A model with a lazy module not built before the fit has its probe checked after the first training step
(6202ef02); an epoch that ran no training step before its end (``on_train_batch_start`` returning -1, which skips the
rest of the epoch) reached its audit with no probe and the lazy module unbuilt, and the fit stopped with torch's
"Attempted to use an uninitialized parameter in <method 'requires_grad_' ...>". The audit of such an epoch is left out
with a warning that says why; the next epoch, which trains and builds the modules, is audited, and the fit is the one
without the callback."""

import warnings

import torch
from lightning.pytorch import seed_everything
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit, UnitImportanceAudit
from tests.helpers.lightning import trainer
from tests.test_leftovers_s28b_lazy_module import _X, _Y, _Lazy


class _SkipsFirstEpoch(_Lazy):
    def on_train_batch_start(self, batch, batch_idx):
        return -1 if self.current_epoch == 0 else None


def _fit(tmp_path, callbacks):
    seed_everything(1, verbose=False)
    model = _SkipsFirstEpoch()
    trainer(tmp_path, max_epochs=2, callbacks=callbacks).fit(
        model, DataLoader(TensorDataset(_X, _Y), batch_size=8, shuffle=True), DataLoader(TensorDataset(_X, _Y), batch_size=8))
    return model


def test_an_epoch_that_trained_no_step_is_not_audited_and_says_why(tmp_path):
    plain = _fit(tmp_path / "plain", [])
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None), UnitImportanceAudit(layers=["net.0"])], probe_size=8)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        audited = _fit(tmp_path / "audited", [cb])
    told = [str(w.message) for w in seen if "did not audit epoch 0" in str(w.message)]
    assert told == ["CausalAuditCallback did not audit epoch 0: no training step ran before its end (`on_train_batch_start` "
                    "returned -1) to build the model's lazy modules (net.0), which the audits would build from their own "
                    "seed, not training's; the first epoch that trains is audited as scheduled"]
    assert cb.audited_epochs == [1] and cb.failed_epochs == [] and cb.probe is not None
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), audited.parameters()))
