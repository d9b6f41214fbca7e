"""Slices of rows sorted by expert are routing, not ghost BatchNorm's virtual batches (``_virtual_batches``).

An MoE whose experts start with a ``BatchNorm`` given ``x[order].split(counts)`` was read as ghost BatchNorm: two passes
a step (three at the first) and the twins normalised by the rows' statistics of their expert, where the joint pass
already gives a row and its twin routed alike one expert's call (0.02869 -> 0.02908 on session 45's MoE). Slices of
one tensor are now virtual batches where their sizes, in the order they lie, are those of ``chunk``, ``split`` or
``tensor_split``: one size but a smaller last, or sizes one row apart, the larger first. Ghost BatchNorm cut so is
paired as before, whichever way it is cut.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


def _rows(n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    x[:, 3] = (torch.rand(n, generator=g) < 0.5).float()
    return x


class _SortedMoE(nn.Module):
    """Four experts, each starting with a BatchNorm, given their rows of ``x[order].split(counts)``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gate, self.head = nn.Linear(6, 4), nn.Linear(8, 2)
        self.experts = nn.ModuleList(nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 8), nn.ReLU()) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        route = self.gate(x).argmax(1)
        order = torch.argsort(route, stable=True)
        counts = torch.bincount(route, minlength=4).tolist()
        used = [i for i in range(4) if counts[i] > 1]  # an expert given one row (or none) is skipped
        h = torch.cat([self.experts[i](c) for i, c in enumerate(x[order].split(counts)) if i in used])
        kept = torch.cat([c for i, c in enumerate(order.split(counts)) if i in used])
        return self.head(x.new_zeros(x.shape[0], 8).index_copy(0, kept, h))


@pytest.mark.parametrize("n", [40, 41])
def test_experts_on_rows_sorted_by_expert_keep_the_joint_pass(n: int) -> None:
    # before: [80, 40, 40] (0.0693 vs 0.0615 by hand at 40 rows; 0.0903 vs 0.0647 at 41)
    x, flip = _rows(n), AttributeFlip(3)
    model, term = _SortedMoE().train(), CounterfactualFairnessTerm(flip)
    calls: list[int] = []
    model.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    got = [term.loss(model, x, None) for _ in range(2)]
    assert calls == [2 * n, 2 * n]
    by_hand = _SortedMoE().train()
    for value in got:
        out = by_hand(torch.cat([x, flip(x)]))  # a row and its twin routed alike share an expert's call
        torch.testing.assert_close(value, term.loss_from_outputs(out[:n], out[n:], None), rtol=0, atol=0)


def _cut(how: str, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
    n = h.shape[0]
    return {"chunk": lambda: h.chunk(math.ceil(n / 16)), "split": lambda: h.split(16),
            "tensor_split": lambda: torch.tensor_split(h, math.ceil(n / 16)),
            "slices": lambda: tuple(h[i:i + 16] for i in range(0, n, 16))}[how]()


class _Ghost(nn.Module):
    """Virtual batches of about 16 rows through one BatchNorm (``twice``: each through a second one too)."""

    def __init__(self, how: str, twice: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.how, self.twice = how, twice
        self.fc, self.bn, self.bn2, self.head = nn.Linear(6, 8), nn.BatchNorm1d(8), nn.BatchNorm1d(8), nn.Linear(8, 2)
        self.keep = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 1.0])  # column 3 never read

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cuts = _cut(self.how, self.fc(x * self.keep))
        h = torch.cat([self.bn(c) + (self.bn2(c) if self.twice else 0) for c in cuts])
        return self.head(torch.relu(h))


@pytest.mark.parametrize("n", [40, 42, 50])
@pytest.mark.parametrize(("how", "twice"), [("chunk", False), ("split", False), ("tensor_split", False),
                                            ("slices", False), ("chunk", True)])
def test_ghost_batchnorm_cut_any_way_is_still_paired(how: str, twice: bool, n: int) -> None:
    # the rows' and twins' virtual batches paired: nothing for a column never read (one joint pass: above 0)
    model, term = _Ghost(how, twice).train(), CounterfactualFairnessTerm(AttributeFlip(3))
    calls: list[int] = []
    model.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    assert float(term.loss(model, _rows(n), None).detach()) == 0.0
    assert calls == [2 * n, n, n]
