"""Samples that are overlapping windows of one series: rolling windows ``[N, T]``, ``[N, T, F]`` (time on dimension 1)
or ``[N, F, T]`` (time last) read in order, each the one before shifted by ``s < T`` steps.

Such samples are dependent: consecutive windows share ``T - s`` of their steps, so a mean over them rests on fewer
independent samples than ``N`` and a test that treats them as independent (the causal graph's paired t-tests,
``structure/significance``) is too confident. Measured on an MLP forecaster of an AR series (windows of 16 steps,
stride 1, the first 64 of a validation set): the standard error of a unit's mean effect understated its spread across
independent blocks of 64 by 1.57 times (median over 64 units; 0.98 for 64 windows drawn at random).

Examples:
    >>> import torch
    >>> series = torch.randn(40, generator=torch.Generator().manual_seed(0))
    >>> windows = series.unfold(0, 8, 1)  # [33, 8]: stride 1
    >>> overlapping_windows(windows)
    (32, 32, 1, 1)
    >>> overlapping_windows(windows[::8]) is None  # windows that share no step
    True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["overlapping_windows"]


def _candidates(x: Tensor, apart: int = 1) -> Tensor:
    """Of ``x [N, T, F]``, ``[N - k, T - 2]`` (``k = apart``): where sample ``i + k`` may be sample ``i`` shifted by ``s = 1 .. T - 2`` steps
    on steps not all one value, by an anchor, the first step ``j`` of sample ``i + 1`` other than its step 0, which such a
    pair holds at step ``s + j`` of sample ``i``, ``j < T - s``. Sample ``i + 1``'s step 0 would do too, but where it is a
    blank (silence, a margin, padding) it is at every blank step of sample ``i``, each a shift to check: [64, 128, 1000]
    log-mels with silence took 41 s, [64, 512, 512] pages with white margins 258 s, on one CPU thread."""
    n, t = x.shape[0], x.shape[1]
    later = x[apart:]
    moved = (later != later[:, :1]).flatten(2).any(2)  # [N - k, T]
    anchor = moved.to(torch.uint8).argmax(1)  # the first step that moved (0 where none: no candidate, below)
    at = (x[:-apart] == later[torch.arange(n - apart, device=x.device), anchor][:, None]).flatten(2).all(2)  # [N - k, T]
    step_of_anchor = anchor[:, None] + torch.arange(1, t - 1, device=x.device)  # [N - k, T - 2]: s + j
    return at.gather(1, step_of_anchor.clamp(max=t - 1)) & (step_of_anchor < t) & moved.any(1, keepdim=True)


def _shifted_pairs(x: Tensor, apart: int = 1) -> tuple[int, int]:
    """Of ``x [N, T, F]`` (time on dimension 1), the most common shift ``s`` (``1 <= s <= T - 2``: two steps or more
    shared) by which a sample ``i + 1`` is sample ``i`` shifted, on steps that are not all one value, and the consecutive
    pairs ``(i, i + 1)`` so shifted by that ``s`` (``(0, 0)``: none); with ``apart = k``, of the pairs ``(i, i + k)``."""
    n, t = x.shape[0], x.shape[1]
    first_step_at = _candidates(x, apart)  # [N - k, T - 2]: i+k may be i shifted by s
    shift = torch.zeros(n - apart, dtype=torch.long, device=x.device)
    for s in (first_step_at.any(0).nonzero().flatten() + 1).tolist():  # a loop over candidate shifts, not over samples
        rows = (first_step_at[:, s - 1] & (shift == 0)).nonzero().flatten()
        shared = x[rows, s:]  # [R, T - s, F]
        same = (x[rows + apart, :t - s] == shared).flatten(1).all(1)
        varies = (shared != shared[:, :1]).flatten(1).any(1)  # constant rows (padding, a blank) overlap trivially
        shift[rows[same & varies]] = s
    if not (shift > 0).any():
        return 0, 0
    stride = int(shift[shift > 0].mode().values)  # a rolling-window dataset has one stride: chance matches scatter
    return int((shift == stride).sum()), stride


def _periodic(x: Tensor, stride: int) -> bool:
    """Whether samples of ``x [N, T, F]`` too far apart to share a step as windows of stride ``stride`` (``k`` apart,
    ``k * stride > T - 2``) are shifted copies all the same: the values of a periodic series, a calendar (one-hot weekdays
    or hours, their sine and cosine), which windows spread over the series (the warning's own way out) repeat."""
    first = (x.shape[1] - 2) // stride + 1
    tried = range(first, min(first + 8, x.shape[0] - 3))  # 8 distances at most, 4 pairs at least
    alike = 0
    for apart in tried:
        pairs, _ = _shifted_pairs(x, apart)
        alike += pairs >= 4 and 2 * pairs >= x.shape[0] - apart
    return alike >= 2 and 2 * alike >= len(tried)  # most distances: a period, not a chance match of few values


def _few_kinks(x: Tensor) -> bool:
    """Whether every sample of ``x [N, T, F]`` (time on dimension 1) is a straight line along time but at 3 steps at
    most, and at one step or more (its second difference nonzero there, in any feature), of steps from one to the next
    of 3 values at most over the whole probe: a padding mask or thermometer code (an edge: 0 and 1), a one-hot position
    (a spike: ``eye(T).flip(0)``, 0 and +-1), left-padded position ids (a pad, then a ramp: 0, the ramp's step and the
    pad's drop). A probe sorted by length or position lays such rows out each the one before shifted by one step, yet
    they are a function of a length or a position, not windows of one series. Windows of a series held or interpolated
    between readings (a daily value at hourly steps) bend as seldom, but by steps of many values, and are windows."""
    values = x if x.is_floating_point() else x.double()
    bend = (values[:, 2:] - 2 * values[:, 1:-1] + values[:, :-2]).abs()  # [N, T - 2, F]
    scale = values.abs().flatten(1).amax(1).clamp(min=1.0)[:, None, None]  # float ramps bend by a rounding at most
    bends = (bend > 1e-5 * scale).any(2).sum(1)
    if not bool((bends <= min(3, x.shape[1] - 3)).all()):  # a straight step in each: windows of 5 steps bend at 3
        return False
    steps = (values[:, 1:] - values[:, :-1]).flatten().sort().values
    return int((steps.diff() > 1e-5 * float(scale.max())).sum()) + 1 <= 3


def _repeated(x: Tensor) -> bool:
    """Whether half the samples of ``x [N, T, F]`` that are not all one value, and 4 or more, equal the sample ``k``
    later, one ``k`` for all: the windows of a periodic series (an hour one-hot over 7 steps, its period longer than the
    window) spread over it come back to the same phase every ``k`` samples. Windows of one stretch of a series of few
    values (sparse events, an on/off state) repeat too, the blank windows and those of one event at one step, but at
    no one distance."""
    flat = x.flatten(1)
    varies = (flat != flat[:, :1]).any(1)
    _, which = torch.unique(flat, dim=0, return_inverse=True)
    which = which.masked_fill(~varies, -1)  # a blank sample repeats nothing
    order = torch.sort(which, stable=True).indices  # the samples of one value in order, each beside its next
    same = (which[order[1:]] == which[order[:-1]]) & (which[order[1:]] >= 0)
    if not bool(same.any()):
        return False
    lags = (order[1:] - order[:-1])[same]  # a sample's distance to the next equal to it
    repeats = int((lags == lags.mode().values).sum())
    return repeats >= 4 and 2 * repeats >= int(varies.sum())


def overlapping_windows(x: Tensor) -> tuple[int, int, int, int] | None:
    """Whether the samples of ``x`` are overlapping windows of one series, in order.

    Sample ``i + 1`` is sample ``i`` shifted by ``s`` steps along the time dimension (1, or the last of a 3-D
    ``[N, F, T]``) where ``x[i + 1, :T - s] == x[i, s:]`` exactly, ``1 <= s <= T - 2``, on steps not all one value, one
    ``s`` (the stride) for 4 pairs or more and half the pairs or more: binary sequences match some shift by chance, each
    pair another. Samples too far apart to share a step that match all the same are a periodic series (a calendar), not
    windows of one stretch of it, nor are samples half of which equal the sample ``k`` later, one ``k``. Samples straight
    along time but at 3 steps at most, of steps of 3 values at most (padding masks, one-hot or left-padded positions of
    a probe sorted by length), are none.

    Args:
        x: the samples ``[N, T]`` or ``[N, T, F]`` / ``[N, F, T]``; other shapes, and fewer than 3 samples or steps, are
            never windows.

    Returns:
        ``(pairs, of, s, dim)``: the ``pairs`` of the ``of = N - 1`` consecutive pairs shifted by the stride ``s`` and
        the time dimension ``dim``, where at least half of the pairs (and 4) are; else ``None``.
    """
    if not isinstance(x, Tensor) or x.dim() not in (2, 3) or x.shape[0] < 3 or x.is_complex():
        return None
    views = {1: x.detach()[..., None]} if x.dim() == 2 else {1: x.detach(), 2: x.detach().transpose(1, 2)}  # no copy
    for dim, series in views.items():
        if series.shape[1] < 3:
            continue
        pairs, shift = _shifted_pairs(series)
        if pairs < 4 or 2 * pairs < x.shape[0] - 1 or _few_kinks(series) or _periodic(series, shift):
            continue
        if _repeated(series):
            return None  # the same in every view
        return pairs, x.shape[0] - 1, shift, dim
    return None
