"""A per-feature baseline for windows [N, T, F] (the training mean of each feature, ``x.mean((0, 1))``,
shape [F]) was refused as not 'broadcastable to [N, T, F]', which torch broadcasts; it is aligned on
the last dimensions now and gives the effects of a float64 loop that sets each step to the means."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, InputEffectAudit, Probe
from lightning_causal.causal import input_effects

T, F = 6, 3


def test_a_per_feature_baseline_of_windows_sets_each_step_to_the_feature_means() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(T * F, 4), nn.Tanh(), nn.Linear(4, 2)).double().eval()
    x = torch.randn(5, T, F, dtype=torch.float64) + torch.tensor([3.0, -1.0, 0.5], dtype=torch.float64)
    means = x.mean((0, 1))  # [F]
    steps = torch.arange(T).reshape(1, T, 1).expand(1, T, F)
    with torch.no_grad():
        clean = model(x)[:, 1]
        expected = torch.stack([clean - model(torch.where(steps == t, means.expand_as(x), x))[:, 1] for t in range(T)], 1)
    for baseline in (means, means.reshape(1, 1, F)):
        torch.testing.assert_close(input_effects(model, x, steps, baseline=baseline, target=1), expected, rtol=0, atol=1e-12)
    result = InputEffectAudit(feature_mask=steps, baseline=means, target=1, ace_values=None).run(model, Probe(x))
    torch.testing.assert_close(result.vectors["mean_abs_effect"].double(), expected.abs().mean(0), rtol=0, atol=1e-6)
    CaptumBaseline(("Saliency",), feature_mask=steps, baseline=means, target=1).run(model, Probe(x))  # the same baseline


def test_a_baseline_that_does_not_broadcast_is_still_refused() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(T * F, 2))
    with pytest.raises(ValueError, match="baseline"):
        input_effects(model, torch.randn(5, T, F), baseline=torch.zeros(4), target=0)
