"""A LightningDataModule over scikit-learn's bundled digits (no download), for demos and configs."""

from __future__ import annotations

import lightning.pytorch as pl
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal.engine.checks import check_int
from lightning_causal.models import load_digits_tensors

__all__ = ["DigitsDataModule"]


class DigitsDataModule(pl.LightningDataModule):
    """8x8 digits as ``[N, 1, 8, 8]`` tensors in [0, 1]; a fixed train/validation split.

    Args:
        batch_size: training batch size (validation uses 256).
        val_fraction: share of the 1,797 images held out for validation.
        seed: seed of the split (a private generator).
    """

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.2, seed: int = 0) -> None:
        super().__init__()
        check_int("batch_size", batch_size, minimum=1)
        self.batch_size, self.val_fraction, self.seed = batch_size, val_fraction, seed

    def setup(self, stage: str) -> None:
        xt, yt, xv, yv = load_digits_tensors(self.val_fraction, self.seed)
        self.train_set, self.val_set = TensorDataset(xt, yt), TensorDataset(xv, yv)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256)
