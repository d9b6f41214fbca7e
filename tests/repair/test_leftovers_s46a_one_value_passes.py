"""Ghost BatchNorm whose first half has a virtual batch of one row runs one joint pass a step, not two.

The first half's pass stops before a training-mode ``BatchNorm`` given one value per channel (torch refuses it) and one
pass of both halves runs, warned ``ONE_VALUE``. The model's record of its last step (``draws``) was not set there, so
each step ran the joint pass, undone as split, the first half (stopped), and the joint pass again: ``[34, 34]`` a step
for 17 rows in ``x.split(8)``. The value of each step and the warning are as before.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair.paired_rows import ONE_VALUE


def _rows(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    x[:, 3] = (torch.rand(n, generator=g) < 0.5).float()
    return x


class _Split8(nn.Module):
    """Virtual batches of ``x.split(8)``: 17 rows leave one of one row; dropout ``p`` after them."""

    def __init__(self, p: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.bn, self.drop, self.head = nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(p), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.bn(c) for c in self.fc(x).split(8)])
        return self.head(self.drop(torch.relu(h)))


def _joint_by_hand(p: float, xs: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """The values of one joint pass of the rows and their twins a step, from the same generator state."""
    model, flip, term = _Split8(p).train(), AttributeFlip(3), CounterfactualFairnessTerm(AttributeFlip(3))
    torch.manual_seed(seed)
    got = []
    for x in xs:
        out = model(torch.cat([x, flip(x)]))
        got.append(term.loss_from_outputs(out[: len(x)], out[len(x):], None))
    return got


@pytest.mark.parametrize("p", [0.0, 0.2])
def test_a_one_row_virtual_batch_runs_one_joint_pass_a_step(p: float) -> None:
    # before: [34, 34] at every step (a joint pass undone, the first half stopped, the joint pass again)
    model, term = _Split8(p).train(), CounterfactualFairnessTerm(AttributeFlip(3))
    calls: list[int] = []
    model.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    xs = [_rows(17, seed) for seed in (1, 2, 3)]
    torch.manual_seed(5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [term.loss(model, x, None) for x in xs]
    assert calls == [34, 34, 34, 34]  # the first step finds the split (a pass undone), then one pass a step
    assert [str(w.message) for w in caught if "BatchNorm" in str(w.message)] == [ONE_VALUE]
    for value, want in zip(got, _joint_by_hand(p, xs, seed=5)):
        torch.testing.assert_close(value, want, rtol=0, atol=0)
    after = _Split8(p).train()
    torch.manual_seed(5)
    for x in xs:  # the BatchNorm statistics advance once a step, as by the joint passes by hand
        after(torch.cat([x, AttributeFlip(3)(x)]))
    for name, b in model.named_buffers():
        torch.testing.assert_close(b, dict(after.named_buffers())[name], rtol=0, atol=0, msg=name)


def test_rows_that_pair_again_are_paired_at_the_next_step() -> None:
    # 16 rows after the fallback: two virtual batches of 8, the first half first and its replay (no joint pass)
    model, term = _Split8(0.0).train(), CounterfactualFairnessTerm(AttributeFlip(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        term.loss(model, _rows(17, 1), None)
    same = copy.deepcopy(model)  # its state now, read by a term with no record of the model
    calls: list[int] = []
    model.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    x = _rows(16, 4)
    got = term.loss(model, x, None)
    assert calls == [16, 16]
    want = CounterfactualFairnessTerm(AttributeFlip(3)).loss(same, x, None)  # a joint pass undone, then the same
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    for name, b in model.named_buffers():
        torch.testing.assert_close(b, dict(same.named_buffers())[name], rtol=0, atol=0, msg=name)
