"""``CounterfactualFairnessTerm(distance="sym_kl")`` of a single-logit model (``[N]`` or ``[N, 1]``) with a ``+inf``
output (an overflow, a diverged model) was ``+inf``, and the fit's error named a class ruled out with a ``-inf`` mask,
a cause the model does not have: ``(log(1 − σ), log σ)`` of ``+inf`` is ``(-inf, 0)``, read as the negative class ruled
out. 262701aa made the ``logit`` distance NaN with no note there (and several classes give NaN under ``sym_kl``);
``sym_kl`` of a single logit now does the same. A single ``-inf`` (the positive class ruled out) stays ``+inf`` and
named, as for ``logit`` (second_s32a)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


@pytest.mark.parametrize("shape", [(2,), (2, 1)])
def test_a_single_overflowing_logit_is_nan_with_no_note_as_for_the_logit_distance(shape: tuple[int, ...]) -> None:
    a, b = torch.tensor([float("inf"), 1.0]).reshape(shape), torch.tensor([0.0, 3.0]).reshape(shape)
    for distance in ("sym_kl", "logit"):
        term = CounterfactualFairnessTerm(AttributeFlip(0), distance=distance)
        value = term.loss_from_outputs(a, b, None)
        assert math.isnan(value.item()) and term._non_finite_note(value) == ""  # sym_kl: was +inf, naming a -inf mask


def test_a_single_minus_inf_is_still_inf_and_named_and_a_finite_pair_its_hand_value() -> None:
    term = CounterfactualFairnessTerm(AttributeFlip(0), distance="sym_kl")
    ruled = term.loss_from_outputs(torch.tensor([float("-inf")]), torch.tensor([0.0]), None)
    assert ruled.item() == float("inf") and "in one row of a pair and not in the other" in term._non_finite_note(ruled)
    p, q = torch.sigmoid(torch.tensor(2.0)), torch.tensor(0.5)  # z = 2 against z = 0: ½ Σ (p − q)(log p − log q) of 2 classes
    hand = 0.5 * ((p - q) * (p.log() - q.log()) + (q - p) * ((1 - p).log() - (1 - q).log()))
    torch.testing.assert_close(term.loss_from_outputs(torch.tensor([2.0]), torch.tensor([0.0]), None), hand)
