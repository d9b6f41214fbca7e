"""``CausalRepairModule.wrap`` calls the wrapped module's dataloader, batch-transfer, ``backward`` and
evaluation-mode hooks where it defines them, and only there (Lightning's choice between a module's and a
datamodule's hooks is the unwrapped one)."""

from __future__ import annotations

import copy
import pickle
import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


def _data(n: int = 96) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()  # a binary sensitive column
    return x, ((x[:, 1] + x[:, 2]) > 0).long()


def _scaled(x: Tensor) -> Tensor:
    """The features doubled, the binary sensitive column 0 kept."""
    return torch.cat([x[:, :1], 2 * x[:, 1:]], 1)


def _loader(x: Tensor, y: Tensor, shuffle: bool = False) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=shuffle)


class Plain(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.backward_calls = 0

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        loss = F.cross_entropy(self(batch[0]), batch[1])
        self.log("epoch_seen", float(self.trainer.current_epoch))  # the wrapped module's trainer is attached
        return loss

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


class WithLoaders(Plain):
    def train_dataloader(self) -> DataLoader:
        return _loader(*_data())

    def val_dataloader(self) -> DataLoader:
        return _loader(*_data(32))


class Doubling(Plain):
    def on_after_batch_transfer(self, batch, dataloader_idx):  # noqa: ANN001, ANN201
        return _scaled(batch[0]), batch[1]

    def backward(self, loss: Tensor, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self.backward_calls += 1
        loss.backward(*args, **kwargs)


def _wrap(module: pl.LightningModule) -> CausalRepairModule:
    return CausalRepairModule.wrap(module, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)])


def _fit(module: pl.LightningModule, *loaders, datamodule=None) -> tuple[CausalRepairModule, pl.Trainer]:
    pl.seed_everything(0, verbose=False)
    repair = _wrap(module)
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, accelerator="cpu", deterministic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(repair, *loaders, datamodule=datamodule)
    return repair, trainer


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_the_module_s_own_dataloaders_are_used():
    own, trainer = _fit(WithLoaders())
    given, _ = _fit(Plain(), _loader(*_data()), _loader(*_data(32)))
    assert _same_weights(own, given)
    assert "val_loss" in trainer.callback_metrics and float(trainer.callback_metrics["epoch_seen"]) == 1.0


def test_batch_transfer_and_backward_hooks_run():
    x, y = _data()
    doubled, _ = _fit(Doubling(), _loader(x, y))
    assert doubled.model.backward_calls == 2 * 6  # 96 rows in batches of 16, two epochs
    by_hand, _ = _fit(Plain(), _loader(_scaled(x), y))
    assert _same_weights(doubled.model.net, by_hand.model.net)


class _DoublingData(pl.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        return _loader(*_data())

    def on_after_batch_transfer(self, batch, dataloader_idx):  # noqa: ANN001, ANN201
        return _scaled(batch[0]), batch[1]


def test_a_datamodule_s_hook_runs_for_a_module_without_one():
    with_dm, _ = _fit(Plain(), datamodule=_DoublingData())
    x, y = _data()
    by_hand, _ = _fit(Plain(), _loader(_scaled(x), y))
    assert _same_weights(with_dm.model.net, by_hand.model.net)


def test_only_the_hooks_the_module_defines_are_the_wrap_s():
    from lightning.pytorch.utilities.model_helpers import is_overridden

    plain, loaders = _wrap(Plain()), _wrap(WithLoaders())
    assert not is_overridden("train_dataloader", plain) and not is_overridden("on_after_batch_transfer", plain)
    assert is_overridden("train_dataloader", loaders) and is_overridden("val_dataloader", loaders)
    assert not is_overridden("test_dataloader", loaders)
    with pytest.raises(Exception, match="must be implemented"):  # Lightning's error, as unwrapped
        pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False).fit(plain)


def test_the_wrap_still_copies_and_pickles():
    repair = _wrap(Doubling())
    for twin in (copy.deepcopy(repair), pickle.loads(pickle.dumps(repair))):
        batch = (torch.ones(2, 4), torch.zeros(2, dtype=torch.long))
        assert torch.equal(twin.on_after_batch_transfer(batch, 0)[0], torch.tensor([[1.0, 2, 2, 2]] * 2))
        assert twin.on_after_batch_transfer.args[0] is twin  # bound to the copy, not the original
