"""The LightningModule that tests of training loops subclass: the forward pass through ``self.net`` and a
cross-entropy training step; a subclass builds ``self.net`` and its optimizer."""

from __future__ import annotations

import lightning.pytorch as pl
import torch.nn.functional as F


class NetClassifier(pl.LightningModule):
    """``forward(x) = self.net(x)``; ``training_step`` returns the cross-entropy of ``(x, y)``."""

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)
