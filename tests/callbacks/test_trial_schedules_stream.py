"""Iteration-based training on a stream (found by the schedules trial): a training ``IterableDataset``
without a length never ends its first epoch, so ``max_steps=30`` with ``every_n_epochs=1`` gave one
audit, at the end of fit, silently. The callback now warns and names the fix
(``limit_train_batches=<int>``), with which each epoch of that many batches is audited."""

import warnings

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from tests.helpers.lightning import quick_trainer, small_module, synthetic_loaders


class _Stream(IterableDataset):
    """An endless stream of the synthetic 4-class images."""

    def __init__(self) -> None:
        (self.x, self.y), _ = (t.dataset.tensors for t in synthetic_loaders())

    def __iter__(self):
        i = 0
        while True:
            yield self.x[i % len(self.x)], self.y[i % len(self.y)]
            i += 1


def _fit(tmp_path, **options):
    _, val = synthetic_loaders()
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], probe_size=4, report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=-1, max_steps=6, **options).fit(small_module(), DataLoader(_Stream(), batch_size=8), val)
    return cb


def test_a_stream_without_epochs_warns_that_it_gets_one_audit(tmp_path):
    with pytest.warns(UserWarning, match=r"training dataloader has no length.*audits at most once, at the end of fit.*limit_train_batches"):
        cb = _fit(tmp_path)  # before the fix: no warning
    assert cb.audited_epochs == [0]


def test_epochs_of_a_stream_cut_by_limit_train_batches_are_audited_without_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r"(?!.*no length)")
        cb = _fit(tmp_path, limit_train_batches=2)
    assert cb.audited_epochs == [0, 1, 2]
    assert torch.equal(cb.probe.first, synthetic_loaders()[1].dataset.tensors[0][:4])
