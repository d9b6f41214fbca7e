"""Scores that are not finite are ringed in image and frame heatmaps (710de0dc, not_finite_marks), but a sequence's
channels x time heatmap and the attribution grid still drew them as a grey cell without a ring (one grey pixel of a
28 x 28 map in the grid could not be found: /tmp/leftovers2_s26/before_grid_28.png), and their notes said ``grey``
where the image maps' say ``grey, ringed``. Both ring them now and say so. A sequence's heatmap is stretched to its
panel (3 rows of 200 steps): its cells are at most 32 along each side, so a NaN of row 0 is ringed on row 0, not on
the middle of a square cell of 7 rows."""

from __future__ import annotations

import math

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.comparison import attribution_grid
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.sequence_maps import sequence_maps

NAN, INF = math.nan, math.inf


def _rings(ax) -> list[list[float]]:  # noqa: ANN001
    """The (x, y) = (column, row) centres of the rings on a map panel, sorted; [] where it has none."""
    return sorted(sum((c.get_offsets().tolist() for c in ax.collections), []))


def test_a_sequence_heatmaps_scores_that_are_not_finite_are_ringed_on_their_rows():
    m = torch.full((1, 3, 200), 0.1)
    m[0, 0, 50] = NAN  # cells of 1 row x 7 steps (200 / 32): steps 49-55, centre 52
    m[0, 2, 120:131] = INF  # cells 119-125 and 126-132: centres 122 and 129
    (_, fig), = sequence_maps(MapData(torch.rand(1, 3, 200), {"causal": m}, "ie"))
    FigureCanvasAgg(fig).draw()
    heatmap = fig.axes[1]
    assert _rings(heatmap) == [[52.0, 0.0], [122.0, 2.0], [129.0, 2.0]]  # before: no ring
    assert heatmap.get_xlim() == (-0.5, 199.5) and heatmap.get_ylim() == (2.5, -0.5)  # the map's, kept
    assert "12 of 600 scores are not finite (NaN/inf): grey, ringed" in [t.get_text() for t in fig.texts]  # before: grey


def test_a_finite_sequence_heatmap_has_no_ring():
    (_, fig), = sequence_maps(MapData(torch.rand(1, 3, 20), {"causal": torch.randn(1, 3, 20)}, "ie"))
    assert all(len(ax.collections) == 0 for ax in fig.axes)


def test_the_attribution_grids_scores_that_are_not_finite_are_ringed_where_drawn():
    causal, saliency = torch.full((2, 1, 28, 28), -0.1), torch.rand(2, 1, 28, 28)
    causal[0, 0, 14, 14] = NAN  # row 0, the causal column
    saliency[1, 0, 3, 20] = INF  # row 1, the Saliency column: (column 20, row 3)
    fig = attribution_grid(torch.rand(2, 1, 28, 28), {"causal": causal, "Saliency": saliency})
    FigureCanvasAgg(fig).draw()
    panels = [fig.axes[r * 3 + c] for r in range(2) for c in range(3)]  # rows of input | causal | Saliency
    assert [_rings(ax) for ax in panels] == [[], [[14.0, 14.0]], [], [], [], [[20.0, 3.0]]]  # before: none
    assert fig.get_supxlabel() == ("causal: 1 of 1568 scores is not finite (NaN/inf): grey, ringed\n"
                                   "Saliency: 1 of 1568 scores is not finite (NaN/inf): grey, ringed")


def test_a_tabular_grids_strip_is_ringed_at_its_feature():
    t = torch.randn(2, 20)
    t[0, 5] = NAN
    fig = attribution_grid(torch.rand(2, 20), {"causal": t})
    assert _rings(fig.axes[1]) == [[5.0, 0.0]] and _rings(fig.axes[3]) == []
    assert fig.axes[1].get_xlim() == (-0.5, 19.5)
