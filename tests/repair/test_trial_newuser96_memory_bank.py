"""A kNN classifier whose memory bank (a FIFO queue of keys and soft labels, buffers written in its training-mode
forward, as MoCo's queue) was filled by ``CausalRepairModule``'s term passes too: fused, the counterfactual rows went
into the bank beside the task's (half the bank synthetic, flipped rows); unfused (``fuse_forward=False``), the term's
own pass of the batch wrote each training row a second time. The two settings trained different models, neither the
one plain training fills (trial newuser96). A buffer the task's pass writes some of its rows into is now a state the
terms' passes put back: the bank holds the training rows once, in both settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm

Q, D, C, N = 24, 4, 2, 8


class _MemoryKNN(nn.Module):
    """p = (p_knn + p_model) / 2, p_knn a softmax over the top-4 cosine neighbours among the bank's raw input rows;
    each training-mode pass writes its rows and their predicted probabilities into the bank (FIFO)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(D, C)
        self.register_buffer("keys", torch.full((Q, D), float("nan")))
        self.register_buffer("vals", torch.full((Q, C), 1.0 / C))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p_model = self.head(x).softmax(1)
        keys = F.normalize(self.keys.nan_to_num(0.0), dim=1)
        s, i = (F.normalize(x, dim=1) @ keys.T).topk(4, dim=1)
        p = (p_model + (s / 0.1).softmax(1).unsqueeze(2).mul(self.vals.clone()[i]).sum(1)) / 2
        if self.training:
            with torch.no_grad():
                rows = (self.ptr + torch.arange(x.shape[0])) % Q
                self.keys[rows], self.vals[rows] = x, p_model
                self.ptr.copy_((self.ptr + x.shape[0]) % Q)
        return p.log()


def _fit(fuse: bool, data: torch.Tensor, labels: torch.Tensor) -> _MemoryKNN:
    torch.manual_seed(0)
    model = _MemoryKNN()
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)], fuse_forward=fuse)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(4):
        batch = (data[step * N:(step + 1) * N], labels[step * N:(step + 1) * N])
        opt.zero_grad()
        _loss(repair, batch, step).backward()
        opt.step()
    return model


def _loss(repair: CausalRepairModule, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> torch.Tensor:
    out = repair.training_step(batch, step)
    return out["loss"] if isinstance(out, dict) else out


@pytest.mark.parametrize("fuse", [True, False])
def test_the_memory_bank_holds_the_training_rows_once_not_the_terms_rows(fuse: bool) -> None:
    g = torch.Generator().manual_seed(1)
    data = torch.randn(4 * N, D, generator=g)
    data[:, 0] = (data[:, 0] > 0).float()  # the flipped binary column
    labels = torch.randint(0, C, (4 * N,), generator=g)
    model = _fit(fuse, data, labels)
    assert int(model.ptr) == 4 * N % Q  # each training row written once: 32 rows into a bank of 24
    expected = data[4 * N - Q:]  # the last 24 training rows, in FIFO order from ptr
    order = (torch.arange(Q) + 4 * N) % Q  # the slot of each of those rows
    torch.testing.assert_close(model.keys[order], expected, rtol=0, atol=0)


def test_fused_and_unfused_fill_the_same_bank() -> None:
    g = torch.Generator().manual_seed(2)
    data = torch.randn(4 * N, D, generator=g)
    data[:, 0] = (data[:, 0] > 0).float()
    labels = torch.randint(0, C, (4 * N,), generator=g)
    fused, unfused = _fit(True, data, labels), _fit(False, data, labels)
    assert torch.equal(fused.keys, unfused.keys) and torch.equal(fused.ptr, unfused.ptr)
    torch.testing.assert_close(fused.vals, unfused.vals)
    torch.testing.assert_close(fused.head.weight, unfused.head.weight)
