"""Inputs that a probe lays out each the one before shifted by one step, yet are no windows of one series, were warned
as overlapping windows (review of newuser118, left in session 44): Hugging Face left-padded ``position_ids`` of a probe
sorted by length (a pad, then a ramp), ``eye(12).flip(0)`` (one-hot positions: a spike), and an hour one-hot over a
short horizon ``[N, 7, 24]`` of windows spread over the series (a period longer than the window: the samples repeat)."""

import torch
import torch.nn.functional as F

from lightning_causal.causal.engine.overlapping_windows import overlapping_windows


def _left_padded_position_ids(t: int, lengths: torch.Tensor, fill: int = 1) -> torch.Tensor:
    """As transformers builds them from a left-padded attention mask: cumsum - 1, padding filled."""
    mask = (torch.arange(t)[None] >= t - lengths[:, None]).long()
    return (mask.cumsum(1) - 1).masked_fill(mask == 0, fill)


def _hours(horizon: int, every: int, n: int = 64) -> torch.Tensor:
    """The hour one-hot of the future steps of windows starting ``every`` hours apart: [n, horizon, 24]."""
    one_hot = F.one_hot(torch.arange(4000) % 24, 24).float()
    return torch.stack([one_hot[i:i + horizon] for i in range(0, 4000 - horizon, every)])[:n]


def test_left_padded_position_ids_of_a_probe_sorted_by_length_are_no_windows():
    assert overlapping_windows(_left_padded_position_ids(32, torch.arange(5, 31))) is None  # was (25, 25, 1, 1)
    assert overlapping_windows(_left_padded_position_ids(64, torch.arange(10, 60), fill=0)) is None
    assert overlapping_windows(_left_padded_position_ids(48, torch.arange(3, 45)).float() / 48) is None  # a float ramp


def test_one_hot_positions_are_no_windows():
    assert overlapping_windows(torch.eye(12).flip(0)) is None  # was (11, 11, 1, 1)
    assert overlapping_windows(torch.eye(20).flip(0)[:, :, None].expand(-1, -1, 3)) is None


def test_an_hour_calendar_over_a_short_horizon_is_no_window_set():
    assert overlapping_windows(_hours(7, 16)) is None  # was (42, 63, 8, 2): the hours read as steps
    assert overlapping_windows(_hours(7, 25)) is None  # was (63, 63, 1, 1): 25 hours apart, one hour on


def test_true_windows_of_short_and_few_valued_series_are_still_found():
    g = torch.Generator().manual_seed(0)
    walk = torch.randn(500, generator=g).cumsum(0)
    assert overlapping_windows(walk.unfold(0, 5, 1)[:16]) == (15, 15, 1, 1)  # 5 steps bend at 3: one straight step needed
    assert overlapping_windows(walk.unfold(0, 4, 1)[:16]) == (15, 15, 1, 1)
    sparse = (torch.rand(2000, generator=g) < 0.15).float()  # few events: some windows bend at 3 steps or fewer
    assert overlapping_windows(sparse.unfold(0, 16, 1)[:64])[2:] == (1, 1)
    hours = F.one_hot(torch.arange(2000) % 24, 24).float()
    series = torch.cat([torch.randn(2000, 1, generator=g), hours], 1)
    assert overlapping_windows(series.unfold(0, 7, 1).transpose(1, 2)[:64]) == (63, 63, 1, 1)  # a target beside hours
