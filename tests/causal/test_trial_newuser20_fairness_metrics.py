"""Validation sweep (newuser20): the group fairness metrics fed a user's usual mistakes.

A NaN probability compared as a negative decision (the gap read 0.0); a threshold of 2 or NaN
made every decision negative (0.0 again) and "0.5" failed inside torch; labels were refused as
`preds` when integers (2) or out of [0, 1] (1.5), a NaN label read as 0, a list of labels failed with
an AttributeError."""

import pytest
import torch

from lightning_causal.causal.scm.fairness import (
    demographic_parity_difference,
    equalized_odds_difference,
    group_rates,
)

P = torch.tensor([0.2, 0.8, 0.6, 0.9])
G = torch.tensor([0, 0, 1, 1])
Y = torch.tensor([0, 1, 1, 0])


def test_the_rates_by_hand():
    # group 0 decides [0, 1], group 1 [1, 1]: parity gap 0.5; TPR 1 and 1, FPR 0 and 1: odds gap 1
    assert demographic_parity_difference(P, G) == 0.5
    assert equalized_odds_difference(P, Y, G) == 1.0
    assert equalized_odds_difference(P, Y.float(), G) == 1.0  # float 0/1 labels are labels
    assert equalized_odds_difference(P, Y.bool(), G) == 1.0


@pytest.mark.parametrize("call, error, message", [
    (lambda: demographic_parity_difference(torch.tensor([float("nan"), 0.8, 0.6, 0.9]), G), ValueError,
     r"`preds` to be finite probabilities in \[0, 1\] but it holds 1 NaN"),
    (lambda: demographic_parity_difference(torch.tensor([0.2, float("inf"), 0.6, 0.9]), G), ValueError, r"`preds` to be finite"),
    (lambda: demographic_parity_difference(torch.tensor([-1.0, 2.0, 0.6, 0.9]), G), ValueError,
     r"`preds` to be probabilities in \[0, 1\] but got values from -1 to 2"),
    (lambda: demographic_parity_difference(P, G, threshold=2.0), ValueError, r"`threshold` to be a number in \[0.0, 1.0\] but got 2.0"),
    (lambda: demographic_parity_difference(P, G, threshold=float("nan")), ValueError, r"`threshold` .* got nan"),
    (lambda: demographic_parity_difference(P, G, threshold="0.5"), ValueError, r"`threshold` .* got '0.5'"),
    (lambda: equalized_odds_difference(P, torch.tensor([0.0, 1.5, 1.0, 0.0]), G), ValueError,
     r"float `labels` to be probabilities in \[0, 1\] but got values from 0 to 1.5; pass labels"),
    (lambda: equalized_odds_difference(P, torch.tensor([0.0, float("nan"), 1.0, 0.0]), G), ValueError, r"`labels` to be finite"),
    (lambda: equalized_odds_difference(P, torch.tensor([0, 2, 1, 0]), G), ValueError, r"integer `labels` to be 0/1 labels but got values \[0, 1, 2\]"),
    (lambda: equalized_odds_difference(P, [0, 1, 1, 0], G), ValueError, r"`labels` to be a 1-d tensor but got <class 'list'>"),
    (lambda: group_rates(P, G, torch.tensor([0, 1, 1])), ValueError, r"`labels` to have shape \[4\] but got \[3\]"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
