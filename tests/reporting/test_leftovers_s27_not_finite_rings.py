"""Rings over scores that are not finite (not_finite_marks) where they found nothing or hid the map: a heatmap all NaN
got a frame of 108 rings at its edge (the cells there have fewer than 8 grey neighbours) and a note saying "784 of
784 scores ... grey, ringed" (/tmp/leftovers_s27/before/allnan.png); scattered NaN (30 % of a map) got a full-size
ring on every cell, which buried the map's colours (/tmp/leftovers_s27/before/big30.png, scattered.png). Now a map
all grey has no ring and its note says "all n scores are not finite (NaN/inf): grey"; over more than a quarter of
the cells the rings are smaller and thinner; a few NaN keep full-size rings."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.frame_maps import frame_maps
from lightning_causal.reporting.image_figures import heatmap_row
from lightning_causal.reporting.image_maps import image_maps
from lightning_causal.reporting.map_data import MapData

NAN = math.nan


def _note(fig) -> str:  # noqa: ANN001
    return " ".join(t.get_text() for t in fig.texts).replace("\n", " ")


def _rings(fig) -> int:  # noqa: ANN001
    """The number of rings over the figure's maps (its colour bars' collections aside)."""
    return sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections if c.get_label() == "not finite")


def test_a_map_all_grey_has_no_ring_and_says_all():
    maps = {"causal": torch.full((1, 1, 28, 28), NAN), "Saliency": torch.rand(1, 1, 28, 28)}
    (_, fig), = image_maps(MapData(inputs=torch.rand(1, 1, 28, 28), maps=maps, audit="ie"))
    FigureCanvasAgg(fig).draw()
    causal = fig.axes[1]
    assert len(causal.collections) == 0  # before: 108 rings along the edge
    assert "causal: all 784 scores are not finite (NaN/inf): grey" in _note(fig)  # before: 784 of 784 ... grey, ringed
    assert "ringed" not in _note(fig)


def test_a_video_all_grey_has_no_ring_but_a_grey_frame_beside_finite_ones_is_ringed():
    grey = torch.full((1, 1, 2, 4, 4), NAN)
    (_, fig), = frame_maps(MapData(inputs=torch.rand(1, 1, 2, 4, 4), maps={"causal": grey}, audit="ie"))
    assert _rings(fig) == 0  # before: 12 a frame
    assert "all 32 scores are not finite (NaN/inf): grey" in _note(fig)
    half = torch.rand(1, 1, 2, 4, 4)
    half[:, :, 0] = NAN  # frame 0 all grey, frame 1 finite: the note says "ringed", and frame 0 is
    (_, fig), = frame_maps(MapData(inputs=torch.rand(1, 1, 2, 4, 4), maps={"causal": half}, audit="ie"))
    assert "16 of 32 scores are not finite (NaN/inf): grey, ringed" in _note(fig)
    assert _rings(fig) == 12  # frame 0's edge cells


def _ring_style(fraction: float) -> tuple[int, float, float]:
    m = torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(0))
    m[torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(1)) < fraction] = NAN
    fig = heatmap_row(torch.rand(1, 28, 28), {"causal": m})
    (ring,) = fig.axes[1].collections
    return len(ring.get_offsets()), float(ring.get_sizes()[0]), float(ring.get_linewidths()[0])


def test_rings_over_many_cells_are_lighter_and_a_few_keep_their_size():
    many, size, width = _ring_style(0.3)
    assert many > 0.25 * 28 * 28 and (size, width) == (6.0, 0.5)  # before: 24 and 1.0 on every one
    few, size, width = _ring_style(0.02)
    assert 0 < few < 0.25 * 28 * 28 and (size, width) == (24.0, 1.0)


def test_scattered_rings_leave_the_maps_colours_seen():
    m = torch.rand(1, 224, 224, generator=torch.Generator().manual_seed(1))  # NaN at 30 % of its pixels: in every cell
    m[torch.rand(1, 224, 224, generator=torch.Generator().manual_seed(0)) < 0.3] = NAN
    fig = heatmap_row(torch.rand(1, 224, 224), {"causal": m})
    FigureCanvasAgg(fig).draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    x0, y0, x1, y1 = fig.axes[1].get_window_extent().extents
    h = rgb.shape[0]
    panel = rgb[int(h - y1) + 2:int(h - y0) - 2, int(x0) + 2:int(x1) - 2]
    black = (panel.max(-1) < 60).mean()  # the rings' black (the darkest red of the scale is (103, 0, 13))
    assert len(fig.axes[1].collections[0].get_offsets()) == 32 * 32 and black < 0.2, black  # before: 0.72 of the panel
