"""``CounterfactualFairnessTerm(distance="logit")`` (counterfactual logit pairing) of a pair where a class is ruled
out (``-inf``) in one row only: the centred difference ``d − mean(d)`` of an infinite ``d`` was NaN; it is now
``+inf``, the limit of a finite fill ``-M`` (``4(2 + M)/3`` on the pair below), as the symmetric KL is ``+inf``
there, and the fit's error says ``is +inf`` with its cause, as for ``sym_kl`` (leftovers_s32b)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip

INF = float("inf")


def _term() -> CounterfactualFairnessTerm:
    return CounterfactualFairnessTerm(AttributeFlip(0), distance="logit")


@pytest.mark.parametrize("fill", [1e2, 1e4])
def test_a_finite_fill_grows_with_the_fill(fill: float) -> None:
    # d = (0, 0, 2 + M), mean (2 + M)/3: |centred| sums to 4(2 + M)/3
    value = _term().loss_from_outputs(torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[0.0, 1.0, -fill]]), None)
    assert value.item() == pytest.approx(4 * (2 + fill) / 3)


def test_a_class_ruled_out_in_one_row_only_is_inf_and_named() -> None:
    term = _term()
    a = torch.tensor([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]], requires_grad=True)
    b = torch.tensor([[0.0, 1.0, -INF], [3.0, 1.0, 2.0]])
    value = term.loss_from_outputs(a, b, None)
    assert value.item() == INF  # was NaN
    note = term._non_finite_note(value)
    assert "(distance='logit') is +inf" in note and "in one row of a pair and not in the other" in note
    assert "distance='abs_prob'" in note and "no way out" in note  # a -1e4 fill is not offered as a way out
    value.backward()  # the finite pair keeps its gradient: d = (-3, 0, 0), centred (-2, 1, 1) of signs s = (-1, 1, 1),
    # ∂/∂d_j = (s_j − mean s) / N = (-4/3, 2/3, 2/3) / 2; the pair of value +inf passes none (not NaN)
    torch.testing.assert_close(a.grad, torch.tensor([[0.0, 0.0, 0.0], [-2 / 3, 1 / 3, 1 / 3]]))


def test_each_row_ruling_out_another_class_is_inf() -> None:
    a, b = torch.tensor([[0.0, -INF, 2.0]]), torch.tensor([[0.0, 1.0, -INF]])
    assert _term().loss_from_outputs(a, b, None).item() == INF


def test_a_class_ruled_out_in_both_rows_still_adds_0_and_nan_outputs_get_no_note() -> None:
    term = _term()
    a, b = torch.tensor([[0.0, 3.0, -INF]]), torch.tensor([[0.0, 1.0, -INF]])
    assert term.loss_from_outputs(a, b, None).item() == pytest.approx(8 / 3)  # d = (0, 2, 0): |(-2/3, 4/3, -2/3)|
    value = term.loss_from_outputs(torch.tensor([[0.0, math.nan, 2.0]]), torch.zeros(1, 3), None)
    assert math.isnan(value.item()) and term._non_finite_note(value) == ""
