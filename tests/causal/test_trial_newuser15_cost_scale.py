"""Each feature's unit of cost, `scale=` (newuser15 trial): l1/l2 cost every column in its own units, so on
raw clinical or credit columns the search bought every change from the column of smallest unit (on
load_breast_cancer a few thousandths of 'fractal dimension error' for every sample). Wachter et al. cost each
column in its MAD; `scale=mad` does: the cost is l1 Σ|δ_j|/s_j + l2 Σ(δ_j/s_j)²."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure.counterfactuals import (
    CounterfactualSettings,
    counterfactual_explanation,
)
from tests.helpers.models import credit_model

X = torch.tensor([[60.0, 0.10], [20.0, 0.05]])  # 1.0 and 3.5 short of the boundary
MAD = torch.tensor([20.0, 0.05])


def test_l1_in_mads_buys_the_change_from_the_column_cheapest_in_mads() -> None:
    s = CounterfactualSettings(l2=0.0)
    raw = counterfactual_explanation(credit_model(), X, 1, s)  # raw units: savings rate, 0.1 and 0.35 (10 per unit)
    torch.testing.assert_close(raw.delta, torch.tensor([[0.0, 0.1], [0.0, 0.35]]), rtol=0.01, atol=1e-6)
    cf = counterfactual_explanation(credit_model(), X, 1, s, scale=MAD)  # one MAD of income gives 1.0, of savings rate 0.5
    assert cf.success.all()
    torch.testing.assert_close(cf.delta, torch.tensor([[20.0, 0.0], [70.0, 0.0]]), rtol=0.01, atol=1e-6)
    torch.testing.assert_close(cf.l1, cf.delta.abs().sum(1))  # distances stay in the inputs' units


def test_l2_in_mads_is_the_weighted_minimum_norm_change() -> None:
    # min Σ (δ_j / s_j)² subject to w·δ = m: δ = m s² w / Σ s_j² w_j² (the margin 1.0 and 3.5 to reach)
    cf = counterfactual_explanation(credit_model(), X, 1, CounterfactualSettings(l1=0.0, l2=1.0, steps=50), scale=MAD)
    w = torch.tensor([0.05, 10.0])
    need = torch.tensor([1.0, 3.5])
    expected = need[:, None] * (MAD**2 * w) / (MAD**2 * w**2).sum()
    assert cf.success.all()
    torch.testing.assert_close(cf.delta, expected, rtol=0.01, atol=1e-6)


@pytest.mark.parametrize(("income_unit", "change"), [(50.0, [1.0, 0.0]), (5000.0, [0.0, 49.0])])
def test_integer_columns_keep_whole_steps_under_a_scale(income_unit: float, change: list[float]) -> None:
    model = nn.Linear(2, 2)  # class 1 when 0.5 years + 0.01 income > 3; years integral
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [0.5, 0.01]]))
        model.bias.copy_(torch.tensor([0.0, -3.0]))
    x = torch.tensor([[4.0, 51.0]])  # 0.49 short: one year (0.5 unit of 2 years) or 49 income (0.98 or 0.0098 unit)
    cf = counterfactual_explanation(model, x, 1, CounterfactualSettings(l2=0.0), integer=[0], scale=torch.tensor([2.0, income_unit]))
    assert cf.success.all()
    assert cf.delta[0, 0] == change[0]  # whole years
    assert cf.delta[0, 1] == pytest.approx(change[1], rel=0.01, abs=1e-6)


def test_ones_change_nothing() -> None:
    a = counterfactual_explanation(credit_model(), X, 1)
    b = counterfactual_explanation(credit_model(), X, 1, scale=torch.ones(2))
    assert torch.equal(a.counterfactuals, b.counterfactuals)


@pytest.mark.parametrize(("scale", "error", "match"), [
    (torch.tensor([1.0, 0.0]), ValueError, r"`scale` to be positive and finite .* got 0 at feature 1"),
    (torch.ones(3), ValueError, r"`scale` broadcastable to one input \[2\] or to the inputs \[2, 2\] but got \[3\]"),
    ([1.0, 2.0], TypeError, "`scale` to be None or a tensor"),
])
def test_bad_scale_named(scale, error, match) -> None:
    with pytest.raises(error, match=match):
        counterfactual_explanation(credit_model(), X, 1, scale=scale)
