"""Review of the change (git diff 8e7989a): the first-order estimates' flat-feature check uses the engine's shared
test of "changes nothing".

- ``input_attribution._warn_flat_features`` found the samples a feature's intervention changes with its own
  ``x != b``, which takes ``-0.0`` for the baseline ``0.0``: ``ablation.changed_groups`` (the row engines' one test of
  "changes nothing") tells them apart, as a model that reads the sign does.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _SignReader(nn.Module):
    """``f = 3 x_0 + copysign(1, x_1)``: feature 1's gradient is 0 everywhere, while its sign moves the output."""

    def forward(self, x):
        return (3.0 * x[:, 0] + torch.copysign(torch.ones_like(x[:, 1]), x[:, 1])).unsqueeze(1)


def test_a_feature_at_minus_zero_is_checked_against_the_baseline_zero():
    x = torch.tensor([[1.0, -0.0], [2.0, -0.0], [-1.0, -0.0]], dtype=torch.float64)
    model = _SignReader()
    exact = input_effects(model, x, baseline=0.0, target=0)
    torch.testing.assert_close(exact[:, 1], torch.full((3,), -2.0, dtype=torch.float64))  # -1 - (+1), by hand
    with pytest.warns(UserWarning, match=r"1 of 2 input features \(groups \[1\]\) have a first-order estimate of 0"):
        approx = input_effects(model, x, baseline=0.0, target=0, method="attribution")
    torch.testing.assert_close(approx[:, 0], 3.0 * x[:, 0])  # linear feature: exact
    assert torch.equal(approx[:, 1], torch.zeros(3, dtype=torch.float64))  # the estimate itself is kept
