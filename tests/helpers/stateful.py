"""A recurrent LightningModule that carries its hidden state across batches on the module (``self.h = h.detach()``, a
plain attribute or a registered buffer, as truncated back-propagation through time is written in Lightning 2.x), for
the tests of the audits' and the repair terms' passes leaving that state as they found it."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn


class Streaming(pl.LightningModule):
    """``GRU(features, hidden)`` then ``Linear(hidden, 2)`` of the last step; the state ``h`` ``[1, batch, hidden]`` (a
    buffer with ``buffer``, else a plain attribute) is set in every forward pass and read in training where the batch
    size matches (evaluation: a fresh state); never reset: one stream across epochs. Each training step records the
    state it found (``entering``) and the one it left (``left``)."""

    def __init__(self, buffer: bool, batch: int, features: int, hidden: int) -> None:
        super().__init__()
        self.rnn, self.head = nn.GRU(features, hidden, batch_first=True), nn.Linear(hidden, 2)
        if buffer:
            self.register_buffer("h", torch.zeros(1, batch, hidden))
        else:
            self.h = torch.zeros(1, batch, hidden)
        self.entering: list[torch.Tensor] = []
        self.left: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = self.h if self.training and self.h.shape[1] == x.shape[0] else None
        out, h = self.rnn(x, h0)
        self.h = h.detach()
        return self.head(out[:, -1])

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        self.entering.append(self.h)
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.left.append(self.h)
        return loss

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)
