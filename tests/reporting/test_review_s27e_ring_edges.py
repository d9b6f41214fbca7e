"""Rings over scores that are not finite mark the edge of a grey area where it meets finite scores: 2d85827a took the
frame of rings a map all NaN got along its edge for marking nothing (its cells there have fewer than 8 grey neighbours,
the map's outside counted finite), but mended only that map: a grey area touching the map's edge still got that frame
(a map whose left half is NaN: 80 rings, 52 of them on the map's top, left and bottom edges, where no finite score is).
The map's outside now counts as grey: a ring is drawn where a grey cell has a finite neighbour, or holds finite scores."""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

from lightning_causal.reporting.not_finite_marks import ring_not_finite


def _rings(m: torch.Tensor) -> list[list[float]]:
    ax = Figure().subplots()
    ax.imshow(m.numpy())
    ring = ring_not_finite(ax, m)
    return [] if ring is None else sorted(ring.get_offsets().tolist())


def test_a_grey_half_is_ringed_where_it_meets_the_finite_half_only():
    m = torch.rand(28, 28, generator=torch.Generator().manual_seed(0))
    m[:, :14] = math.nan
    assert _rings(m) == [[13.0, float(r)] for r in range(28)]  # before: 80 rings, the map's edges too


def test_a_grey_corner_is_ringed_on_its_inner_edge_and_a_single_nan_at_the_edge_still_is():
    m = torch.rand(28, 28, generator=torch.Generator().manual_seed(0))
    m[:3, :3] = math.nan
    assert _rings(m) == [[0.0, 2.0], [1.0, 2.0], [2.0, 0.0], [2.0, 1.0], [2.0, 2.0]]  # before: 8, (0, 0) ... too
    one = torch.rand(28, 28, generator=torch.Generator().manual_seed(0))
    one[0, 27] = math.nan
    assert _rings(one) == [[27.0, 0.0]]
