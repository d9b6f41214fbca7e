"""The first-order estimates' warning of features at a flat point (gradient exactly 0 at every sample while setting
them to the baseline moves the output) says what the samples hold, as ``CaptumBaseline``'s warning of a gradient 0
at the probe does: it was a plain ``UserWarning``, so an audit's dry run on 2 samples (which ignores
``ProbeContentsWarning``) showed it before training although two rows at a flat point say nothing of the probe, and
filters by category could not tell it from a warning about the configuration."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import ProbeContentsWarning, input_effects


class _Prototype(nn.Module):
    """``f = -||x - p||²``: the gradient in feature i, ``-2 (x_i - p_i)``, is 0 at ``x_i = p_i``."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor([0.5, 1.0, -0.3], dtype=torch.float64))

    def forward(self, x):
        return -((x - self.p) ** 2).sum(1, keepdim=True)


def _at_the_prototype() -> torch.Tensor:
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[:, 1] = 1.0  # feature 1 at the prototype: estimate 0, effect -(1 - 1)² + (0 - 1)² = 1 at every sample
    return x


def test_the_flat_feature_warning_is_a_probe_contents_warning():
    with pytest.warns(ProbeContentsWarning, match=r"1 of 3 input features \(groups \[1\]\) have a first-order estimate of 0"):
        approx = input_effects(_Prototype(), _at_the_prototype(), target=0, method="attribution")
    assert torch.equal(approx[:, 1], torch.zeros(4, dtype=torch.float64))


def test_a_filter_of_probe_contents_silences_it_and_nothing_else_is_said():
    x = _at_the_prototype()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ProbeContentsWarning)  # what Audit.dry_run does on its 2 samples
        approx = input_effects(_Prototype(), x, target=0, method="attribution")
    p = torch.tensor([0.5, 1.0, -0.3], dtype=torch.float64)
    torch.testing.assert_close(approx[:, [0, 2]], (-2 * (x - p) * x)[:, [0, 2]])  # sum_i (x_i - 0) * df/dx_i, by hand
