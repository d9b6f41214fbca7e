"""A fit that ran no training step (``limit_train_batches=0``, a training dataloader of no batch, ``max_epochs=0``)
ended without an audit and without a word from the callback: Lightning skips training, ``on_train_start`` and
``on_train_end`` included, so no probe is read and the fit-end audit (of the last trained epoch) has none to audit;
Lightning itself says nothing of ``limit_train_batches=0``. The callback now warns at the fit's end, naming why."""

import warnings

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit
from tests.helpers.lightning import quick_trainer, small_module, synthetic_loaders


def _empty_loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)), batch_size=4)


@pytest.mark.parametrize("options, why", [
    (dict(limit_train_batches=0), r"the Trainer has `limit_train_batches=0`"),
    (dict(empty=True), r"the training dataloader holds no batch"),
    (dict(max_epochs=0), r"`max_epochs=0`, `max_steps=-1` ended it before the first step"),
])
def test_a_fit_without_a_training_step_says_that_nothing_was_audited_and_why(tmp_path, options, why):
    callback = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], probe_size=8, report_dir=tmp_path)
    train, val = synthetic_loaders()
    if options.pop("empty", False):
        train = _empty_loader()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's own words of an empty loader
        with pytest.warns(UserWarning, match=rf"CausalAuditCallback ran no audit: this fit ran no training step, as {why}.*"
                                             r"lightning_causal.audit_model\(model, audits, data\)"):
            quick_trainer(callbacks=[callback], **{"max_epochs": 2, **options}).fit(small_module(), train, val)
    assert callback.audited_epochs == [] and callback.probe is None and not list(tmp_path.iterdir())


def test_a_fit_that_trains_gives_no_such_warning(tmp_path):
    callback = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], probe_size=8, report_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quick_trainer(callbacks=[callback], max_epochs=1, limit_train_batches=1).fit(small_module(), *synthetic_loaders())
    assert callback.audited_epochs == [0]
    assert not [w for w in caught if "ran no audit" in str(w.message)]
