"""What tests of training loops watch training with: a repair term of weight 0 that keeps the training
inputs its ``setup`` reads, and a callback that keeps the inputs of every training batch."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from lightning_causal.repair.base import RepairTerm


class InputsReadingTerm(RepairTerm):
    """A term of weight 0 whose setup reads the training inputs (kept in ``inputs``); its loss is 0."""

    def __init__(self, name: str = "reads") -> None:
        super().__init__(weight=0.0, name=name)
        self.inputs = None

    def setup(self, model, train_inputs=None):
        self.inputs = train_inputs

    def loss(self, model, x, y):
        return model(x).sum() * 0.0


class BatchSpy(pl.Callback):
    """Keeps a copy of each training batch's inputs (``batch[0]``) in ``seen``, in training order."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append(batch[0].clone())
