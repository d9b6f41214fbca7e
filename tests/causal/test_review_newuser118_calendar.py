"""A calendar (one-hot weekdays, their sine and cosine) is a periodic series: its windows look shifted copies of each
other however far apart they are, so a forecaster's future covariates read from windows spread over the series (the
overlapping-windows warning's own way out) were taken as overlapping windows (review of newuser118's b673d2c6)."""

import math

import torch

from lightning_causal.causal.engine.overlapping_windows import overlapping_windows

N_STEPS, PAST = 1200, 16


def _spread(feature: torch.Tensor, horizon: int) -> torch.Tensor:
    """The future steps of windows that share no step: sample i starts at i * PAST + PAST."""
    return torch.stack([feature[i + PAST:i + PAST + horizon] for i in range(0, N_STEPS - PAST - horizon, PAST)])[:64]


def test_calendar_of_windows_spread_over_the_series_is_no_window_set():
    day = torch.arange(N_STEPS) % 7
    one_hot = torch.nn.functional.one_hot(day, 7).float()
    angle = 2 * math.pi * day / 7
    sin_cos = torch.stack([angle.sin(), angle.cos()], -1)
    for horizon in (7, 12):
        assert overlapping_windows(_spread(one_hot, horizon)) is None, horizon  # was (63, 63, 2, 1)
        assert overlapping_windows(_spread(sin_cos, horizon)) is None, horizon


def test_windows_of_a_series_with_a_calendar_are_still_found():
    g = torch.Generator().manual_seed(0)
    day = torch.nn.functional.one_hot(torch.arange(N_STEPS) % 7, 7).float()
    series = torch.cat([torch.randn(N_STEPS, 1, generator=g), day], 1)  # the target beside its calendar
    x = series.unfold(0, PAST, 1).transpose(1, 2)[:64]  # [64, 16, 8]: stride 1
    assert overlapping_windows(x) == (63, 63, 1, 1)
    few_values = torch.randint(0, 3, (200,), generator=g).unfold(0, 6, 1)[:40]  # chance matches far apart: still windows
    assert overlapping_windows(few_values)[2] == 1
