"""bar_figure's legend of exact values and first-order estimates sat in the upper right corner whatever was there: over
the tallest bars where the bars on the right reach the top (bars of about equal height; larger negative bars first,
then positive ones that set the top; all bars negative, hanging from 0 at the top). It now takes the upper corner where
it covers no bar, the y axis raised above the bars under it where neither is free; a chart whose right corner is free
is drawn as before."""

import pytest
import torch

from lightning_causal.reporting.chart_figures import bar_figure
from tests.helpers.legends import legend_and_bar_boxes

_EVERY_OTHER = [True, False] * 4


@pytest.mark.parametrize("values", [
    [1.0, 0.98, 0.97, 0.96, 0.95, 0.95, 0.94, 0.93],  # about equal heights: every corner over a bar
    [-1.0, -0.9, -0.8, 0.7, 0.7, 0.69, 0.68, 0.68],  # the positive bars on the right set the top
    [-1.0, -0.98, -0.97, -0.96, -0.95, -0.95, -0.94, -0.93],  # every bar hangs from 0, at the top
], ids=["level", "negative-first", "all-negative"])
def test_the_estimate_legend_covers_no_bar(values):
    fig = bar_figure(torch.tensor(values), "layer", estimated=_EVERY_OTHER)
    box, bars = legend_and_bar_boxes(fig)
    assert len(bars) == 8 and not [b for b in bars if b.overlaps(box)]
    assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)  # inside the figure, not cut


def test_a_free_upper_right_corner_keeps_the_legend_and_the_axis():
    fig = bar_figure(torch.tensor([1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01]), "layer", estimated=_EVERY_OTHER)
    box, bars = legend_and_bar_boxes(fig)
    ax = fig.axes[0]
    assert not [b for b in bars if b.overlaps(box)]
    assert ax.get_ylim() == pytest.approx((0.0, 1.05)) and box.x1 > ax.get_window_extent().x0 + 0.6 * ax.get_window_extent().width
