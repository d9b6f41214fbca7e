"""Trial newuser125 (neural fields: a coordinate MLP explained on sets of 2-D coordinates ``[N, P, 2]`` under
``figure_kind="points"``): the 2-D scatter figure was laid out with a left margin of 2% of its width, which
is room for 3-D axes (their labels drawn inside the panel) but not for a plane's y tick labels: they fell off
the figure's left edge (``-0.75`` ... ``1.00`` not drawn), and the colour bar's labels off its right edge
(``-0.005`` drawn as ``-0.00``). Every tick label of every panel and colour bar now lies inside the figure."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.point_maps import point_maps


def _labels_outside(fig) -> list[str]:
    """The tick labels (of every axes: panels and colour bars) whose box leaves the figure."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    outside = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():  # those drawn: within the axis's limits
                label = tick.label1
                if not (low <= tick.get_loc() <= high) or not label.get_visible() or not label.get_text():
                    continue
                b = label.get_window_extent(renderer)
                if b.x0 < box.x0 - 0.5 or b.x1 > box.x1 + 0.5 or b.y0 < box.y0 - 0.5 or b.y1 > box.y1 + 0.5:
                    outside.append(label.get_text())
    return outside


@pytest.mark.parametrize("names", [("causal",), ("causal", "Saliency")])
def test_a_plane_of_points_keeps_its_tick_labels_inside_the_figure(names):
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(2, 64, 2, generator=g) * 2 - 1  # sets of 2-D coordinates in [-1, 1]
    maps = {k: (torch.rand(2, 64, 2, generator=g) - 0.5) * 0.01 for k in names}  # scores of about +-0.005
    figures = point_maps(MapData(coords, maps, "mean_intensity"))
    assert figures
    for tag, fig in figures:
        assert fig.axes[0].get_yticklabels(), tag
        assert _labels_outside(fig) == [], tag


def test_a_plane_of_points_leaves_its_panel_most_of_the_width():
    g = torch.Generator().manual_seed(1)
    coords = torch.rand(1, 32, 2, generator=g) * 2 - 1
    (_, fig), = point_maps(MapData(coords, {"causal": torch.randn(1, 32, 2, generator=g)}, "ie"))
    FigureCanvasAgg(fig).draw()
    assert fig.axes[0].get_position().width > 0.5  # the scatter is not squeezed by the margins
