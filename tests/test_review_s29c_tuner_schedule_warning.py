"""Review of 09262d08: the set-up warning of a schedule auditing no epoch of the fit (``on_fit_end=False``) was given
twice for one training run with the tuner: once by ``Tuner(trainer).lr_find`` (or ``scale_batch_size``), a fit of its
own that stops before training (its ``max_epochs`` not the one the run trains), and once by the ``fit`` after it. The
search's fit is not warned about; the fit that trains is, and so is a fit listing Lightning's ``LearningRateFinder``
callback itself (one fit, searching at its start)."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateFinder
from lightning.pytorch.tuner import Tuner
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from tests.helpers.lightning import SgdMlp

_X = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
_Y = (_X[:, 0] > 0).long()


class _Tunable(SgdMlp):
    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        self.lr, self.batch_size = 0.1, batch_size

    def train_dataloader(self):
        return DataLoader(TensorDataset(_X, _Y), batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(TensorDataset(_X[:8], _Y[:8]), batch_size=8)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _trainer(tmp_path, *extra):
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=4, epochs=[5], on_fit_end=False,
                                   report_dir=tmp_path)
    return pl.Trainer(max_epochs=2, callbacks=[callback, *extra], logger=False, accelerator="cpu", devices=1,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                      default_root_dir=tmp_path)


def _warned(record) -> int:
    return sum("audits no epoch of this fit" in str(w.message) for w in record)


@pytest.mark.parametrize("search", ["lr_find", "scale_batch_size"])
def test_the_tuners_search_fit_gives_no_nothing_scheduled_warning_and_the_fit_after_it_one(tmp_path, search):
    trainer, module = _trainer(tmp_path), _Tunable()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        if search == "lr_find":
            Tuner(trainer).lr_find(module, num_training=4)
        else:
            Tuner(trainer).scale_batch_size(module, max_trials=1, steps_per_trial=1)
        assert _warned(record) == 0  # before: 1, the search's fit
        trainer.fit(module)
    assert _warned(record) == 1


def test_a_fit_listing_the_learning_rate_finder_callback_is_warned_about(tmp_path):
    trainer = _trainer(tmp_path, LearningRateFinder(num_training_steps=4))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer.fit(_Tunable())
    assert _warned(record) == 1
