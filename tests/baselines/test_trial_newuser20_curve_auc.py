"""Validation sweep (newuser20): curve_auc fed a user's usual mistakes.

fractions running 1 -> 0 (a curve stored in the other order) gave the area with its sign flipped
(-1 for a constant curve of 1); fractions of the wrong length failed inside torch.trapezoid
('There must be one `x` value for each sample point'), a 1-D curve with IndexError, a list with
trapezoid's overload listing."""

import pytest
import torch

from lightning_causal.baselines import curve_auc


def test_areas_by_hand():
    f = torch.tensor([0.0, 0.5, 1.0])
    assert curve_auc(f, torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])).tolist() == [1.0, 0.25]
    assert curve_auc(torch.stack([f, f / 2]), torch.ones(2, 3)).tolist() == [1.0, 0.5]  # fractions per row


@pytest.mark.parametrize("call, error, message", [
    (lambda: curve_auc(torch.tensor([1.0, 0.5, 0.0]), torch.ones(2, 3)), ValueError, r"`fractions` to be non-decreasing .*\[1.0, 0.5, 0.0\]"),
    (lambda: curve_auc(torch.linspace(0, 1, 3), torch.ones(2, 4)), ValueError, r"`fractions` to be \[4\] or \[2, 4\] .*got \[3\]"),
    (lambda: curve_auc(torch.linspace(0, 1, 3), torch.ones(3)), ValueError, r"`curves` to be \[N, S \+ 1\] .*got \[3\]"),
    (lambda: curve_auc([0.0, 0.5, 1.0], torch.ones(2, 3)), TypeError, r"`fractions` to be a tensor but got list"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
