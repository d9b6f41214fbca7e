"""A mixture of experts with a capacity limit (Switch / GShard): the tokens beyond an expert's capacity, the last in its
queue, are dropped (passed through the residual), so a sample's output depends on its batch. Where the probe check saw
it, a mixture's auxiliary loss, written on the module at every pass and never read, was named as the cause, "a state it
keeps from earlier calls" (/tmp/newuser111/e1.py): the way out it gave, resetting that state, changes nothing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _CapacityMixture(nn.Module):
    """Top-1 routing over 2 experts by the larger of features 0 and 1, capacity ceil(N / 2) tokens an expert; the aux
    loss kept on the module as Switch implementations keep it. ``capacity=False``: no token dropped (eval capacity off)."""

    def __init__(self, capacity: bool = True):
        super().__init__()
        torch.manual_seed(0)
        self.experts = nn.ModuleList(nn.Linear(3, 3) for _ in range(2))
        self.head = nn.Linear(3, 2)
        self.capacity, self.aux_loss = capacity, torch.zeros(())

    def forward(self, x):
        choice = (x[:, 1] > x[:, 0]).long()
        onehot = nn.functional.one_hot(choice, 2)
        place = (onehot.cumsum(0) * onehot).sum(1) - 1  # the token's place in its expert's queue
        keep = place < math.ceil(x.shape[0] / 2) if self.capacity else torch.ones_like(place, dtype=torch.bool)
        out = x.clone()  # dropped tokens: the residual only
        for e, expert in enumerate(self.experts):
            rows = ((choice == e) & keep).nonzero().flatten()
            out = out.index_add(0, rows, expert(x[rows]))
        self.aux_loss = 2 * (onehot.float().mean(0) ** 2).sum()  # written, never read
        return self.head(out)


def _probe() -> torch.Tensor:
    # experts of rows 0..7: A B A A A A A B; rows 0, 1 and rows 4, 7 (n // 2, n - 1) differ in expert, so no pair drops
    # a token, and none of the four is dropped in the batch of 8 (capacity 4: rows 5 and 6, A's fifth and sixth, are)
    a, b = torch.tensor([1.0, 0.0, 0.5]), torch.tensor([0.0, 1.0, -0.5])
    return torch.stack([a, b, a, a, a, a, a, b]) + 0.1 * torch.arange(8.0)[:, None]


def test_the_mixture_without_its_capacity_limit_passes_and_reads_each_sample_alone():
    model, x = _CapacityMixture(capacity=False).eval(), _probe()
    effects = input_effects(model, x, target=0)
    with torch.no_grad():  # do(x_j := 0) on each sample alone
        f = model(x)[:, 0]
        alone = torch.stack([model(x * (torch.arange(3) != j))[:, 0] for j in range(3)], 1)
    torch.testing.assert_close(effects, f[:, None] - alone)


def test_an_aux_loss_the_forward_only_writes_is_not_named_as_a_state_carried_across_batches():
    model = _CapacityMixture().eval()
    a, b = torch.tensor([1.0, 0.0, 0.5]), torch.tensor([0.0, 1.0, -0.5])
    x = torch.stack([a, a, b, b]) + 0.1 * torch.arange(4.0)[:, None]  # rows 0 and 1 alone: capacity 1, row 1 dropped
    with pytest.raises(ValueError, match=r"probe samples \[1\] run alone differ .*: its forward depends on the batch "
                                         r"\(.*a mixture of experts' capacity limit") as err:
        input_effects(model, x)
    assert "aux_loss" not in str(err.value)
