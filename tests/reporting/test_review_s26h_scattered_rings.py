"""Rings over a 224 x 224 map whose scores are not finite at 30 % of its pixels, scattered: every 7 x 7 cell of the
ring grid holds such a score, and the cells whose 8 neighbours held such scores too were taken for a grey area's inside
and left unringed, so only the 124 cells at the map's border were ringed: a frame of rings that said the map's edge was
not finite, its inside fine. A grey area's inside is now a cell with no finite score, as its 8 neighbours: every one of
the 1,024 cells is ringed; a wholly grey block keeps only its edge ringed."""

from __future__ import annotations

import math

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.image_figures import heatmap_row


def _rings(m: torch.Tensor) -> list[list[float]]:
    fig = heatmap_row(torch.rand(1, *m.shape[-2:]), {"causal": m})
    FigureCanvasAgg(fig).draw()
    return sorted(o for c in fig.axes[1].collections for o in c.get_offsets().tolist())


def test_scattered_scores_that_are_not_finite_are_ringed_in_every_cell_not_at_the_border():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(1, 224, 224, generator=g)
    m[torch.rand(1, 224, 224, generator=g) < 0.3] = math.nan
    centres = [7 * k + 3.0 for k in range(32)]  # the middles of the 32 cells of 7 pixels a side
    assert _rings(m) == sorted([x, y] for x in centres for y in centres)  # before: the 124 at the border only


def test_a_wholly_grey_block_with_one_finite_score_is_ringed_in_that_cell_and_at_its_edge():
    m = torch.zeros(1, 224, 224)
    m[0, :70, :70] = math.nan  # cells 0-9 a side, wholly grey
    m[0, 35, 35] = 1.0  # cell (5, 5) holds a finite score: ringed, its 8 neighbours too (no grey area's inside)
    centres = [7 * k + 3.0 for k in range(10)]
    # the block's edge where it meets finite scores (not along the map's edge: test_review_s27e_ring_edges)
    edge = [[x, y] for x in centres for y in centres if 66.0 in (x, y)]
    near = [[x, y] for x in centres[4:7] for y in centres[4:7]]
    assert _rings(m) == sorted(edge + near)
