"""Review of 722e6abd: the callback's request of the validation data for its probe (the first epoch does not validate, no
sanity check) puts back the datamodule's attributes and the items of the lists, dicts and sets they hold, but not of a
``collections.deque``: a hook rotating its folds in place (``fold = self.folds[0]; self.folds.rotate(-1)``, the deque's
own way of cycling) gave every validation of the fit the other fold than the same fit without the callback, 36f017aa's
fault by another container."""

from collections import deque

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.callbacks._probe import attributes_untouched
from tests.test_trial_newuser54_fold_hook import _Net  # keeps every validation batch it sees

_X = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
_Y = (_X[:, 0] > 0).long()


class _Folds(pl.LightningDataModule):
    """Two validation folds of 8 rows, the next one per request."""

    def __init__(self) -> None:
        super().__init__()
        self.folds = deque([0, 1])

    def train_dataloader(self):
        return DataLoader(TensorDataset(_X[:16], _Y[:16]), batch_size=8)

    def val_dataloader(self):
        fold = self.folds[0]
        self.folds.rotate(-1)
        rows = slice(16 + 8 * fold, 24 + 8 * fold)
        return DataLoader(TensorDataset(_X[rows], _Y[rows]), batch_size=8)


def _fit(tmp_path, with_callback):
    pl.seed_everything(0, verbose=False)
    module = _Net()
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=4, report_dir=tmp_path)
    trainer = pl.Trainer(max_epochs=4, check_val_every_n_epoch=2, num_sanity_val_steps=0, reload_dataloaders_every_n_epochs=1,
                         logger=False, accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, callbacks=[callback] if with_callback else [])
    trainer.fit(module, datamodule=_Folds())
    return module, callback


def test_a_hook_rotating_a_deque_of_folds_validates_on_the_folds_of_the_fit_without_the_callback(tmp_path):
    plain, _ = _fit(tmp_path / "plain", False)
    audited, callback = _fit(tmp_path / "audited", True)
    assert torch.equal(torch.cat(plain.validated), torch.cat([_X[16:24], _X[24:32]]))  # fold 0 at epoch 1, fold 1 at epoch 3
    assert len(audited.validated) == 2
    assert all(torch.equal(a, b) for a, b in zip(audited.validated, plain.validated))  # before: fold 1, then fold 0
    assert torch.equal(callback.probe.first, _X[16:20])  # the first fold's first rows, read through the hook
    for name, value in plain.state_dict().items():
        assert torch.equal(audited.state_dict()[name], value), name


def test_attributes_untouched_puts_back_a_deques_items_in_place():
    class Owner:
        def __init__(self) -> None:
            self.folds, self.window = deque([0, 1, 2]), deque([5, 6], maxlen=2)

    owner = Owner()
    folds, window = owner.folds, owner.window
    with attributes_untouched(owner):
        owner.folds.rotate(-1)
        owner.window.append(7)
    assert owner.folds is folds and list(folds) == [0, 1, 2]  # before: [1, 2, 0]
    assert owner.window is window and list(window) == [5, 6] and window.maxlen == 2
