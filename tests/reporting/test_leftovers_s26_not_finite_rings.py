"""A score that is not finite is a grey pixel of a heatmap (figure_style's rule), and one grey pixel among pale blue
ones was hard to find, in a map of more pixels than its panel has (224 x 224 in a panel of about 145 pixels) not drawn
at all (/tmp/leftovers_s26/before_224.png). Rings of a fixed size mark them now (not_finite_marks): one per cell of at
most 32 a side holding such a score, a grey area's inside left to its grey; in image rows, frames and a kept row
drawn again. The note names what each kind draws: ``grey, ringed`` of a heatmap, ``grey crosses`` of a point map
(before: ``grey`` of both)."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lightning_causal.reporting.frame_maps import frame_maps
from lightning_causal.reporting.image_figures import heatmap_row
from lightning_causal.reporting.image_maps import image_maps
from lightning_causal.reporting.map_data import MapData

NAN, INF = math.nan, math.inf
SCORES = [NAN, INF, -INF, 1.0, -0.5, 2.0]  # [2, 3]: row 0 not finite


def _drawn(fig: Figure) -> Figure:
    FigureCanvasAgg(fig).draw()  # as the TensorBoard writer draws it (a kept figure is one drawn since it was built)
    return fig


def _rings(ax) -> list[list[float]]:  # noqa: ANN001
    """The (x, y) = (column, row) centres of the rings on a map panel, [] where it has none."""
    return sorted(c.get_offsets().tolist() for c in ax.collections)[0] if ax.collections else []


def test_an_image_rows_not_finite_pixels_are_ringed_and_a_finite_map_has_none():
    maps = {"causal": torch.tensor(SCORES).reshape(1, 1, 2, 3), "Saliency": torch.rand(1, 1, 2, 3)}
    (_, fig), = image_maps(MapData(inputs=torch.rand(1, 1, 2, 3), maps=maps, audit="ie"))
    causal, saliency = _drawn(fig).axes[1:3]
    assert sorted(_rings(causal)) == [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]  # before: no ring
    assert len(saliency.collections) == 0
    assert causal.get_xlim() == (-0.5, 2.5) and causal.get_ylim() == (1.5, -0.5)  # the image's, as imshow set them
    assert "3 of 6 scores are not finite (NaN/inf): grey, ringed" in " ".join(t.get_text() for t in fig.texts).replace("\n", " ")


def test_a_large_map_is_ringed_per_cell_and_a_grey_area_at_its_edge_only():
    m = torch.zeros(1, 224, 224)
    m[0, 100, 150] = NAN  # cells of 7 pixels (224 / 32): cell (14, 21), pixels 98-104 and 147-153
    m[0, :70, :70] = INF  # cells 0-9 a side: ringed on the 19 of its edge that meet finite scores (the map's edge
    fig = _drawn(heatmap_row(torch.rand(1, 224, 224), {"causal": m}))  # is no edge of it: test_review_s27e_ring_edges)
    rings = _rings(fig.axes[1])
    assert len(rings) == 20 and [150.0, 101.0] in rings
    edge = sorted(r for r in rings if r != [150.0, 101.0])
    centres = [7 * k + 3.0 for k in range(10)]
    assert edge == sorted([x, y] for x in centres for y in centres if 66.0 in (x, y))


def test_a_kept_row_drawn_again_moves_its_rings_to_the_new_map():
    layout: dict = {}
    first = torch.tensor([[[NAN, 1.0, 2.0], [0.5, 1.0, 2.0]]])
    second = torch.tensor([[[1.0, 1.0, 2.0], [0.5, 1.0, NAN]]])  # as many not finite: the same note, the row reused
    fig = _drawn(heatmap_row(torch.rand(1, 2, 3), {"causal": first}, layout=layout, reuse=True))
    assert _rings(fig.axes[1]) == [[0.0, 0.0]]
    again = _drawn(heatmap_row(torch.rand(1, 2, 3), {"causal": second}, layout=layout, reuse=True))
    assert again is fig and len(fig.axes[1].collections) == 1
    assert _rings(fig.axes[1]) == [[2.0, 1.0]]  # before: no ring


def test_frames_are_ringed_where_they_hold_scores_that_are_not_finite():
    video = torch.tensor(SCORES).reshape(1, 1, 2, 1, 3)  # [N, C, T, H, W]: frame 0 not finite, frame 1 finite
    (_, fig), = frame_maps(MapData(inputs=torch.rand(1, 1, 2, 1, 3), maps={"causal": video}, audit="ie"))
    frame0, frame1 = _drawn(fig).axes[3:5]
    assert sorted(_rings(frame0)) == [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]
    assert len(frame1.collections) == 0


def test_the_ring_is_drawn_black_around_the_grey_pixel():
    m = torch.full((1, 28, 28), -0.2)  # pale blue everywhere on a signed scale
    m[0, 0, 0], m[0, 14, 14] = -1.0, NAN
    fig = _drawn(heatmap_row(torch.rand(1, 28, 28), {"causal": m}))
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    ax = fig.axes[1]
    x, y = ax.transData.transform((14.0, 14.0))
    col, row = int(round(x)), int(round(fig.bbox.height - y))
    around = rgb[row - 8:row + 9, col - 8:col + 9]
    assert (around.sum(-1) < 150).any()  # a dark pixel near the grey one: the ring (before: grey and pale blue only)
