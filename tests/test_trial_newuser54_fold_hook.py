"""A ``val_dataloader`` hook that rotates over validation folds, one per request (``self.fold = (self.fold + 1) % 2``,
``reload_dataloaders_every_n_epochs=1``), in a fit whose first epoch does not validate (``check_val_every_n_epoch=2``,
no sanity check) (newuser54 trial): the callback requested the validation data at the training's start to read its
probe, so the fold index advanced there and every validation of the fit ran on the other fold than the same fit
without the callback (its ``val_loss``, and an ``EarlyStopping`` or ``ModelCheckpoint`` on it, another fold's), where
docs/index.md says the fit validates on what it would have."""

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from tests.helpers.lightning import SgdMlp

_X = torch.randn(48, 5, generator=torch.Generator().manual_seed(0))
_Y = (_X[:, 0] > 0).long()


class _Folds(pl.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.fold = 0

    def train_dataloader(self):
        return DataLoader(TensorDataset(_X[:16], _Y[:16]), batch_size=8)

    def val_dataloader(self):
        rows = slice(16, 32) if self.fold == 0 else slice(32, 48)
        self.fold = (self.fold + 1) % 2
        self.requested = True  # a value the hook adds: removed as well
        return DataLoader(TensorDataset(_X[rows], _Y[rows]), batch_size=8)


class _Net(SgdMlp):
    def __init__(self) -> None:
        super().__init__()
        self.validated: list[torch.Tensor] = []

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.validated.append(batch[0].clone())
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))


def _fit(tmp_path, with_callback):
    pl.seed_everything(0, verbose=False)
    module, data = _Net(), _Folds()
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=4, report_dir=tmp_path)
    pl.Trainer(max_epochs=4, check_val_every_n_epoch=2, reload_dataloaders_every_n_epochs=1, num_sanity_val_steps=0,
               logger=False, accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False,
               enable_checkpointing=False, callbacks=[callback] if with_callback else []).fit(module, datamodule=data)
    return module, callback


def test_a_fold_rotating_val_hook_validates_on_the_folds_of_the_fit_without_the_callback(tmp_path):
    plain, _ = _fit(tmp_path / "plain", False)
    audited, callback = _fit(tmp_path / "audited", True)
    # without the callback: fold 0 (rows 16-31) at epoch 1, fold 1 (rows 32-47) at epoch 3, two batches each
    assert [v.shape[0] for v in plain.validated] == [8, 8, 8, 8]
    assert torch.equal(torch.cat(plain.validated[:2]), _X[16:32]) and torch.equal(torch.cat(plain.validated[2:]), _X[32:48])
    assert len(audited.validated) == 4
    assert all(torch.equal(a, b) for a, b in zip(audited.validated, plain.validated))  # fails before: the folds swapped
    assert torch.equal(callback.probe.first, _X[16:20])  # the probe: the first fold's first samples, read at the start
    for name, value in plain.state_dict().items():
        assert torch.equal(audited.state_dict()[name], value), name
