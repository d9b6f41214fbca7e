"""True rolling windows that f02aa959's rules took for no windows (review of leftovers_s45b): a silent wrong answer, the
causal graph's standard errors too small. ``_repeated`` took the first 256 windows (the default probe size) of a
sparse-event or on/off series for a calendar, their blank windows and those of one event at one step repeating;
``_few_kinks`` took windows of a series held or interpolated between readings, which bend at 3 steps or fewer, for
masks and position ids."""

import torch
import torch.nn.functional as F

from lightning_causal.causal.engine.overlapping_windows import overlapping_windows


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_windows_of_sparse_events_are_windows():
    events = (torch.rand(3000, generator=_gen(2)) < 0.08).float()
    windows = events.unfold(0, 12, 1)[:256]
    assert torch.unique(windows, dim=0).shape[0] * 2 <= 256  # half of them repeat another: blank or one event
    found = overlapping_windows(windows)
    assert found is not None and found[1:] == (255, 1, 1)


def test_windows_of_an_on_off_state_are_windows():
    state = ((torch.rand(3000, generator=_gen(1)) < 0.1).cumsum(0) % 2).float()  # switches one step in 10
    found = overlapping_windows(state.unfold(0, 16, 1)[:256])
    assert found is not None and found[1:] == (255, 1, 1)


def test_windows_of_a_held_or_interpolated_series_are_windows():
    readings = torch.randn(200, generator=_gen(3)).cumsum(0)
    held = readings.repeat_interleave(12)  # a daily value at hourly steps: windows of 12 change once at most
    found = overlapping_windows(held.unfold(0, 12, 1)[:64])
    assert found is not None and found[2:] == (1, 1)
    lines = F.interpolate(readings[None, None], scale_factor=6, mode="linear", align_corners=True)[0, 0]
    found = overlapping_windows(lines.unfold(0, 8, 1)[:64])  # 8 steps between readings 6 apart: 2 bends at most
    assert found is not None and found[2:] == (1, 1)


def test_masks_positions_and_calendars_stay_no_windows():
    lengths = torch.arange(5, 31)
    mask = (torch.arange(32)[None] >= 32 - lengths[:, None]).long()
    assert overlapping_windows((mask.cumsum(1) - 1).masked_fill(mask == 0, 1)) is None  # left-padded position ids
    assert overlapping_windows(torch.eye(12).flip(0)) is None
    hours = F.one_hot(torch.arange(4000) % 24, 24).float()
    assert overlapping_windows(torch.stack([hours[i:i + 7] for i in range(0, 3000, 25)])[:64]) is None
