"""Bounds of each input (newuser15 trial): a recourse user's monotone constraints (age may only rise) are
`bounds=(low, high)` with `low = x` on that column, one row per input. They were refused ('broadcastable to
one input [3] but got low of shape [2, 3]'), so no constraint could depend on the input's own value."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure.counterfactuals import (
    CounterfactualSettings,
    counterfactual_explanation,
)


def _model() -> nn.Linear:
    """class 1 when 20 - age + 0.5 income > 0 (columns age, income, other)."""
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.5, 0.0]]))
        model.bias.copy_(torch.tensor([0.0, 20.0]))
    return model


X = torch.tensor([[30.0, 10.0, 0.0], [45.0, 20.0, 1.0]])  # margins -5 and -15: both class 0


def test_unconstrained_search_lowers_age() -> None:  # the reference: age has the largest |w|, so L1 takes it from age
    cf = counterfactual_explanation(_model(), X, 1, CounterfactualSettings(l1=0.1, l2=0.0))
    assert cf.success.all()
    assert (cf.delta[:, 0] < -4).all()


@pytest.mark.parametrize("integer", [None, [0]])
def test_age_may_only_rise(integer: list[int] | None) -> None:
    low = torch.full_like(X, -100.0)
    low[:, 0] = X[:, 0]  # monotone: age at least the input's own
    cf = counterfactual_explanation(_model(), X, 1, CounterfactualSettings(l1=0.1, l2=0.0), bounds=(low, 100.0), integer=integer)
    assert cf.success.all()
    assert (cf.counterfactuals[:, 0] >= X[:, 0]).all()
    # the L1 optimum under the constraint: income alone, by margin / 0.5 = 10 and 30 (polishing aims just past it)
    torch.testing.assert_close(cf.delta[:, 1], torch.tensor([10.0, 30.0]), rtol=0.01, atol=0.0)
    assert (cf.delta[:, [0, 2]] == 0).all()


def test_integer_bounds_of_each_input_named_with_their_row() -> None:
    low, high = torch.zeros(2, 3), torch.full((2, 3), 100.0)
    low[1, 0], high[1, 0] = 45.2, 45.8  # no whole age in row 1's range
    with pytest.raises(ValueError, match=r"column 0 has \[45.2, 45.8\] in row 1"):
        counterfactual_explanation(_model(), X, 1, bounds=(low, high), integer=[0])


def test_bounds_of_another_batch_refused() -> None:
    with pytest.raises(ValueError, match=r"broadcastable to one input \[3\] or to the inputs \[2, 3\] but got low of shape \[3, 3\]"):
        counterfactual_explanation(_model(), X, 1, bounds=(torch.zeros(3, 3), 100.0))
