"""Padding masks of texts sorted by length, lengths one apart, lie each the one before shifted by one step, so the
overlapping-windows warning (newuser118's b673d2c6) named a text classifier's attention_mask as windows of one series
(review of newuser118)."""

import torch

from lightning_causal.causal.engine.overlapping_windows import overlapping_windows

T = 64


def test_masks_of_texts_sorted_by_length_are_no_windows():
    longest_first = torch.arange(60, 8, -1)
    right = (torch.arange(T)[None] < longest_first[:, None]).long()  # was (51, 51, 1, 1)
    left = (torch.arange(T)[None] >= T - longest_first.flip(0)[:, None])  # bool, shortest first: was found too
    assert overlapping_windows(right) is None
    assert overlapping_windows(left) is None


def test_windows_of_a_two_valued_series_are_still_found():
    g = torch.Generator().manual_seed(0)
    events = torch.randint(0, 2, (300,), generator=g)
    assert overlapping_windows(events.unfold(0, 12, 1)[:40]) == (39, 39, 1, 1)
