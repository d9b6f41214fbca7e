"""final_read_B F3: a CORAL head ending in nn.Sigmoid (outputs P(rank > k), nn.BCELoss held) beside rank labels
0 .. C got, under CounterfactualFairnessTerm's default distance, the warning of independent probabilities (DUQ's: pass
distance='logit'; under which the levels warning then said the penalty is 0 for CORAL), never the sigmoid levels' way
out `out.sum(1, keepdim=True)`: the independent check ran first. Ranks one beyond the outputs now get the levels'
words under every distance; DUQ's kernel values beside class indices 0 .. C - 1 keep theirs, BCE held or not."""

import re
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm
from tests.audits.test_trial_newuser105_duq_fairness import DUQHead
from tests.repair.test_review_newuser104_sigmoid_levels import SAID, Coral, _batch

LEVELS = "cumulative logits"
INDEPENDENT = "the penalty is the change of that softmax"  # the independent probabilities' words (DUQ)


def _said(model: nn.Module, x: torch.Tensor, y: torch.Tensor, distance: str) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CounterfactualFairnessTerm(AttributeFlip(2), distance=distance).loss(model, x, y)
    return [str(w.message) for w in caught if LEVELS in str(w.message) or INDEPENDENT in str(w.message)]


@pytest.mark.parametrize("distance", ["abs_prob", "sym_kl"])
@pytest.mark.parametrize("sigmoid", [True, False])
def test_ranks_beside_cumulative_outputs_get_the_levels_way_out_under_the_probability_distances(distance, sigmoid):
    x, ranks = _batch()
    assert int(ranks.min()) == 0 and int(ranks.max()) == 3  # one beyond the head's 3 outputs
    said = _said(Coral(sigmoid).eval(), x, ranks, distance)
    assert len(said) == 1 and LEVELS in said[0] and INDEPENDENT not in said[0]  # before (sigmoid): independent only
    assert bool(re.search(SAID, said[0])) == sigmoid  # a sigmoid head's expected rank: out.sum(1, keepdim=True)


@pytest.mark.parametrize("distance", ["abs_prob", "sym_kl"])
@pytest.mark.parametrize("bce", [False, True])
def test_duq_kernel_values_beside_class_indices_keep_the_independent_probabilities_warning(distance, bce):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g)
    x[:, 2] = (torch.rand(32, generator=g) < 0.5).float()
    y = torch.randint(0, 3, (32,), generator=g)
    model = DUQHead()
    if bce:  # DUQ's loss (BCE on one-hot classes): the model says each output is its own sigmoid decision
        model.loss = nn.BCELoss()
    said = _said(model, x, y, distance)
    assert len(said) == 1 and INDEPENDENT in said[0] and "distance='logit'" in said[0]
