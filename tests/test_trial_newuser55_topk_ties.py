"""newuser55's trial: the top-k overlap of explanations with ties and of a constant explanation.

``topk_overlap(a, b, k)`` without ``valid`` took the top ``k`` by ``torch.topk``, whose order among
equal scores is its own (on CPU the higher index first): the same rows gave 1.0 without ``valid`` and
0.0 with an all-True ``valid`` (which breaks ties by lower group id), and an explanation of one value
everywhere, which has no top k, got 1.0 or 0.0 by the order of the other's groups, where Spearman of it
is NaN (docs/methods.md: "Undefined (NaN) for a constant explanation").
"""

import math

import pytest
import torch

from lightning_causal.baselines import spearman, topk_overlap


def test_ties_are_broken_by_lower_group_id_with_or_without_valid():
    a = torch.tensor([[3.0, 3.0, 1.0, 0.0]])  # top-1 by lower id: group 0 (groups 0 and 1 tie)
    b = torch.tensor([[0.0, 3.0, 3.0, 1.0]])  # top-1 by lower id: group 1 (groups 1 and 2 tie)
    everything = torch.ones(1, 4, dtype=torch.bool)
    assert topk_overlap(a, b, 1, ties="first").item() == 0.0  # {0} vs {1}, by hand
    assert topk_overlap(a, b, 1, everything, ties="first").item() == 0.0
    assert topk_overlap(a, b, 2, ties="first").item() == 0.5  # {0, 1} vs {1, 2}
    assert topk_overlap(b, a, 2, everything, ties="first").item() == 0.5


@pytest.mark.parametrize("order", [[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
@pytest.mark.parametrize("valid", [None, torch.ones(1, 4, dtype=torch.bool)])
def test_a_constant_explanation_has_no_top_k_whatever_the_other_ranking(order, valid):
    a, constant = torch.tensor([order]), torch.full((1, 4), 2.0)
    assert math.isnan(spearman(a, constant).item())
    assert math.isnan(topk_overlap(a, constant, 2, valid).item())  # was 1.0 for one order, 0.0 for the other
    assert math.isnan(topk_overlap(constant, a, 2, valid).item())
    assert math.isnan(topk_overlap(constant, constant, 2, valid).item())


def test_constant_rows_leave_the_other_rows_alone():
    a = torch.tensor([[4.0, 3.0, 2.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    b = torch.tensor([[4.0, 1.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    got = topk_overlap(a, b, 2)
    assert got[0].item() == 0.5 and math.isnan(got[1].item()) and got[2].item() == 1.0
