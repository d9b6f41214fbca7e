"""A full queue adding its rows at the FRONT in place (SwAV's ``queue[bs:] = queue[:-bs].clone(); queue[:bs] = emb``,
or ``torch.roll`` then a front write) changes every row of the bank, and ``_shifted`` recognised only a FIFO adding rows
at the end: the bank went untold and the terms' passes wrote the counterfactual rows into it, so that the repair's
bank differed from plain training. A shift read on both ends tells it, and still no scaled bank nor an EMA."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.repair.carried_state import memory_rows_written
from tests.helpers.banks import flip_batches, repaired_beside_plain

D, C, K, N, STEPS = 4, 2, 40, 8, 4


class _FrontQueue(nn.Module):
    """A classifier reading a full queue that its training-mode forward fills at the front, as ``mode`` says."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.head = nn.Linear(D, C)
        self.register_buffer("queue", torch.randn(K, D, generator=torch.Generator().manual_seed(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x) + 0.1 * (x @ self.queue.T).mean(1, keepdim=True)
        if self.training:
            with torch.no_grad():
                bs = x.shape[0]
                if self.mode == "swav":
                    self.queue[bs:] = self.queue[:-bs].clone()
                else:
                    self.queue.copy_(torch.roll(self.queue, bs, 0))
                self.queue[:bs] = x
        return out


MODES = ["swav", "roll"]


def _batches() -> list[torch.Tensor]:
    return flip_batches(STEPS, N, D)


@pytest.mark.parametrize("mode", MODES)
def test_memory_rows_written_names_a_front_queue(mode: str) -> None:
    model = _FrontQueue(mode).train()
    kept = keep_attributes(model, reassigned_buffers=True, values=True)
    with torch.no_grad():
        model(torch.randn(N, D))
    assert memory_rows_written(kept, model) == (("queue", (K, D)),)


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_a_front_queue_holds_what_plain_training_writes(mode: str, fuse: bool) -> None:
    model, plain = repaired_beside_plain(lambda: _FrontQueue(mode), _batches(), fuse)
    torch.testing.assert_close(model.queue, plain.queue, rtol=0, atol=0)


def test_a_flipped_scale_or_ema_is_no_queue() -> None:
    m = nn.Linear(D, D)
    m.register_buffer("feats", torch.randn(K, D))
    m.register_buffer("ema", torch.randn(K, D))
    kept = keep_attributes(m, reassigned_buffers=True, values=True)
    with torch.no_grad():
        m.feats.mul_(0.5)
        m.ema.mul_(0.9).add_(0.1 * torch.randn(K, D))
    assert memory_rows_written(kept, m) == ()
