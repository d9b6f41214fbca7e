"""Memory banks written with more rows per step than the batch were not told (``memory_rows_written`` counted at most
the batch's rows): a kNN-LM's keys, one per token (``N * T``); a MoCo queue fed by a gathered batch (``2N`` on two
ranks); a bank rebuilt by ``torch.cat`` (``self.keys = torch.cat([self.keys, k])[-K:]``) whose size is no multiple of
the batch, or grown without bound; a bank held as a plain attribute. The terms' passes filled them too (fused: the
counterfactual rows beside the task's; unfused: the batch a second time), in silence. A bank is now told by what the
task's pass changed (some of its slices, its slices shifted, or rows appended), whatever their count: the model runs
unfused and the terms' passes put the bank back, so that it holds what plain training puts there."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.repair.carried_state import memory_rows_written
from tests.helpers.banks import flip_batches, repaired_beside_plain

D, C, K, N, STEPS = 4, 2, 40, 8, 4


class _Bank(nn.Module):
    """A classifier reading a bank of past rows, written in its training-mode forward as ``mode`` says."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.head = nn.Linear(D, C)
        size = 21 if mode == "cat" else K  # 21: no multiple of the batch, no dimension its row count
        keys = torch.randn(size, D, generator=torch.Generator().manual_seed(3))
        if mode == "attribute":
            self.keys = keys  # a plain attribute, not a buffer
        else:
            self.register_buffer("keys", keys)
        self.ptr = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x) + 0.1 * (x @ self.keys.T).mean(1, keepdim=True)
        if self.training:
            with torch.no_grad():
                rows = (torch.cat([x, x.flip(0)]) if self.mode in ("gathered", "attribute", "cat", "grown") else
                        (x[:, None] + torch.arange(3.0)[None, :, None]).flatten(0, 1))  # tokens: 3 keys a row
                if self.mode == "cat":
                    self.keys = torch.cat([self.keys, rows])[-self.keys.shape[0]:]
                elif self.mode == "grown":
                    self.keys = torch.cat([self.keys, rows])
                else:
                    at = (self.ptr + torch.arange(len(rows))) % K
                    self.keys[at] = rows
                    self.ptr = (self.ptr + len(rows)) % K
        return out


MODES = ["tokens", "gathered", "cat", "grown", "attribute"]


def _batches() -> list[torch.Tensor]:
    return flip_batches(STEPS, N, D)


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_a_wide_bank_holds_what_plain_training_writes(mode: str, fuse: bool) -> None:
    model, plain = repaired_beside_plain(lambda: _Bank(mode), _batches(), fuse)
    assert model.keys.shape == plain.keys.shape
    torch.testing.assert_close(model.keys, plain.keys, rtol=0, atol=0)


@pytest.mark.parametrize("mode", MODES)
def test_memory_rows_written_names_the_bank(mode: str) -> None:
    model = _Bank(mode).train()
    kept = keep_attributes(model, reassigned_buffers=True, values=True)
    with torch.no_grad():
        model(torch.randn(N, D))
    shape = (21, D) if mode == "cat" else (K + 2 * N, D) if mode == "grown" else (K, D)
    assert memory_rows_written(kept, model) == (("keys", shape),)


def test_running_statistics_are_no_bank() -> None:
    m = nn.Linear(D, D)
    m.register_buffer("mean", torch.randn(D))
    m.register_buffer("steps", torch.zeros(()))
    m.feats = torch.randn(K, D)
    kept = keep_attributes(m, reassigned_buffers=True, values=True)
    with torch.no_grad():
        m.mean = 0.9 * m.mean + 0.1 * torch.randn(D)  # reassigned, every entry moved
        m.steps += 1
        m.feats.mul_(0.5)  # every row moved in place
    assert memory_rows_written(kept, m) == ()
