"""Flat ids of an ``nn.EmbeddingBag`` called with ``offsets`` whose count happens to equal the number of bags
(newuser88 trial: click logs of one item per user on average, bags of 2, 0, 1, 1, 2 and 0 items). The shapes no
longer told the items from the samples, so ``input_effects`` ran and returned ``[6, 1]`` "effects" with every item
taken for a sample: row 1 (an item of sample 0) read sample 1's empty bag and got 0. Refused now, naming the bag and
saying what to do (pad the bags into ``[N, K]``); ids with one item per bag (``offsets = arange(N)``) still run and give
the hand removal of each item."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects


class Bags(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.bag = nn.EmbeddingBag(20, 4, mode="sum")
        self.head = nn.Linear(4, 2)

    def forward(self, ids, offsets):
        return self.head(self.bag(ids, offsets))


IDS = torch.tensor([7, 3, 13, 5, 9, 7])


@pytest.mark.parametrize("args", [(torch.tensor([0, 2, 2, 3, 4, 6]),), {"offsets": torch.tensor([0, 2, 2, 3, 4, 6])}])
def test_flat_ids_as_many_as_the_bags_are_refused(args):
    with pytest.raises(ValueError, match=r"nn.EmbeddingBag 'bag' reads .*\[6\].*6 bags.*Pad each sample's bag into ids \[N, K\]"):
        input_effects(Bags().eval(), IDS, baseline=0, additional_forward_args=args, target=1)


def test_flat_ids_refused_for_a_layer_too():
    with pytest.raises(ValueError, match="Pad each sample's bag"):
        unit_effects(Bags().eval(), IDS, "bag", additional_forward_args={"offsets": torch.tensor([0, 2, 2, 3, 4, 6])},
                     target=1)


def test_one_item_per_bag_still_runs_and_is_the_hand_removal():
    model, offsets = Bags().eval(), torch.arange(6)
    effects = input_effects(model, IDS, baseline=0, additional_forward_args={"offsets": offsets}, target=1)
    with torch.no_grad():
        hand = model(IDS, offsets)[:, 1] - model(torch.zeros_like(IDS), offsets)[:, 1]
    assert torch.allclose(effects[:, 0], hand, atol=1e-6)
