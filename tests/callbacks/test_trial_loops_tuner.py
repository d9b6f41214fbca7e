"""Lightning's tuner with the audit callback attached (the loops trial), as docs/index.md says: the search
(``Tuner.lr_find``, ``Tuner.scale_batch_size``, and a ``LearningRateFinder`` run again at an epoch's start)
runs fit steps with the trainer's callbacks set aside and restores the weights, so no audit runs during it,
TensorBoard gets one point per audited epoch of the real fit (at ``val_loss``'s steps), and the weights are
bit-identical to the same tuned fit without the callback."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import LearningRateFinder
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.tuner import Tuner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback

TAG = "causal/input_effect/mean_abs_effect"


class _Data(pl.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.batch_size = 8
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(48, 5, generator=g)
        self.y = (self.x[:, 0] + self.x[:, 1] > 0).long()

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x[:32], self.y[:32]), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x[32:], self.y[32:]), batch_size=self.batch_size)


class _Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lr = 0.05
        self.net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


class _FinderAtEpochOne(LearningRateFinder):
    def on_fit_start(self, trainer, pl_module) -> None:
        return

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            self.lr_find(trainer, pl_module)


def _tuned_fit(root, how: str, with_callback: bool):
    pl.seed_everything(0, verbose=False)
    module, data = _Net(), _Data()
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)
    callbacks = ([_FinderAtEpochOne(num_training_steps=6)] if how == "finder at epoch 1" else []) + (
        [audit] if with_callback else [])
    trainer = pl.Trainer(max_epochs=2, callbacks=callbacks, default_root_dir=root, accelerator="cpu", devices=1,
                         logger=TensorBoardLogger(root, name="", version=""), enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, deterministic=True, log_every_n_steps=1)
    if how == "lr_find":
        Tuner(trainer).lr_find(module, datamodule=data, num_training=6)
    elif how == "scale_batch_size":
        Tuner(trainer).scale_batch_size(module, datamodule=data, mode="power", steps_per_trial=2, max_trials=2)
    trainer.fit(module, datamodule=data)
    return audit, module


@pytest.mark.parametrize("how", ["lr_find", "scale_batch_size", "finder at epoch 1"])
def test_the_tuners_search_is_not_audited_and_training_is_unchanged(tmp_path, how):
    audit, module = _tuned_fit(tmp_path / "a", how, with_callback=True)
    assert audit.audited_epochs == [0, 1]
    events = EventAccumulator(str(tmp_path / "a"), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars(TAG)] == [e.step for e in events.Scalars("val_loss")]
    assert len(events.Scalars(TAG)) == 2
    assert sorted(p.name for p in (tmp_path / "a" / "causal_audit").glob("*.json")) == ["epoch_0000.json", "epoch_0001.json"]
    _, plain = _tuned_fit(tmp_path / "b", how, with_callback=False)
    for name, value in plain.state_dict().items():
        assert torch.equal(module.state_dict()[name], value), name
