"""Small Lightning set-ups for the callback tests."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.models import DigitsCNN, LightningClassifier


def digits_like(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long() + 2 * (x[:, 0, :, :4].mean((1, 2)) > 0.5).long()
    return x, y


def loaders(n: int = 96, batch_size: int = 16, shuffle: bool = True):
    x, y = digits_like(n)
    train = DataLoader(TensorDataset(x[: n * 3 // 4], y[: n * 3 // 4]), batch_size=batch_size, shuffle=shuffle)
    val = DataLoader(TensorDataset(x[n * 3 // 4 :], y[n * 3 // 4 :]), batch_size=batch_size)
    return train, val


def small_module(batch_norm: bool = True, dropout: float = 0.2, optimizer: str = "sgd") -> LightningClassifier:
    return LightningClassifier(DigitsCNN(channels=(4, 8), hidden=16, num_classes=4, batch_norm=batch_norm, dropout=dropout),
                               lr=0.05, optimizer=optimizer)


def trainer(**kwargs) -> pl.Trainer:
    defaults = dict(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                    enable_checkpointing=False, accelerator="cpu", devices=1, deterministic=True)
    defaults.update(kwargs)
    return pl.Trainer(**defaults)
