"""A forecaster returning [N, H, 1] (one value per horizon) was told to pass
`output=lambda out: out.mean(1)` (its horizons averaged) or `out[:, 0]`; the fix for it is
`out[..., 0]`, then `target=h`, and following it explains horizon h."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _Forecaster(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(6 * 2, 3))

    def forward(self, x):  # [N, 6 steps, 2 features] -> [N, 3 horizons, 1]
        return self.net(x).unsqueeze(-1)


def test_a_forecast_of_one_value_per_horizon_is_told_to_take_it_and_target_a_horizon() -> None:
    torch.manual_seed(0)
    model, x = _Forecaster().double().eval(), torch.randn(4, 6, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"`output=lambda out: out\[\.\.\., 0\]` for one value per horizon or step \[N, H, 1\], "
                                         r"then `target=h`") as info:
        input_effects(model, x, target=1)
    assert "out.mean(1)" not in str(info.value)
    got = input_effects(model, x, target=1, output=lambda out: out[..., 0])
    expected = model.net[1].weight[1].reshape(6, 2) * x  # a linear horizon: w_1 . x, one element at a time
    torch.testing.assert_close(got, expected.detach().reshape(4, -1), rtol=0, atol=1e-12)


class _Tagger(nn.Module):
    def forward(self, x):  # [N, T] -> per-position scores of 3 classes [N, T, 3]
        return x.unsqueeze(-1).expand(-1, -1, 3)


def test_per_position_class_scores_keep_their_advice() -> None:
    with pytest.raises(ValueError, match=r"out\.mean\(1\)"):
        input_effects(_Tagger(), torch.randn(4, 5), target=0)
