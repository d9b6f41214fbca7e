"""``CounterfactualFairnessTerm(distance="logit")`` of a pair with a ``+inf`` output (a float16 logit that overflows, a
diverged model): since 9fe4b98d an infinite difference made the pair ``+inf`` and the fit's error said ``is +inf: a
class the model rules out (a -inf logit, probability 0) in one row of a pair and not in the other`` -- a cause the model
does not have (before, the pair was NaN and the note hedged 'or the outputs are not finite'). A ``+inf`` output now
makes the pair NaN, with no note, as ``sym_kl`` and ``abs_prob`` give; a class ruled out with ``-inf`` in one row only
is still ``+inf`` and named (review_s32a)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


def _term(distance: str = "logit") -> CounterfactualFairnessTerm:
    return CounterfactualFairnessTerm(AttributeFlip(0), distance=distance)


@pytest.mark.parametrize("distance", ["logit", "sym_kl", "abs_prob"])
def test_an_overflowing_output_is_nan_with_no_note_of_a_class_ruled_out(distance: str) -> None:
    term = _term(distance)
    a = torch.tensor([[0.0, 1.0, 7e4], [0.0, 1.0, 2.0]]).half()  # 7e4 overflows float16: +inf
    b = torch.tensor([[0.0, 1.0, 2.0], [3.0, 1.0, 2.0]]).half()
    value = term.loss_from_outputs(a, b, None)
    assert math.isnan(value.item()) and term._non_finite_note(value) == ""  # logit: was +inf, naming a -inf mask


def test_a_single_overflowing_logit_is_nan_and_a_class_ruled_out_in_one_row_still_inf() -> None:
    term = _term()
    single = term.loss_from_outputs(torch.tensor([float("inf"), 1.0]), torch.tensor([0.0, 3.0]), None)
    assert math.isnan(single.item()) and term._non_finite_note(single) == ""  # was +inf
    assert term.loss_from_outputs(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 3.0]), None).item() == 1.5  # (1 + 2) / 2
    ruled = term.loss_from_outputs(torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[0.0, 1.0, float("-inf")]]), None)
    assert ruled.item() == float("inf") and "in one row of a pair and not in the other" in term._non_finite_note(ruled)


def test_the_finite_pairs_value_and_gradient_are_unchanged() -> None:
    a = torch.tensor([[0.0, 1.0, 2.0]], requires_grad=True)
    value = _term().loss_from_outputs(a, torch.tensor([[3.0, 1.0, 2.0]]), None)  # d = (-3, 0, 0), centred (-2, 1, 1)
    value.backward()
    assert value.item() == pytest.approx(4.0)
    torch.testing.assert_close(a.grad, torch.tensor([[-4 / 3, 2 / 3, 2 / 3]]))
