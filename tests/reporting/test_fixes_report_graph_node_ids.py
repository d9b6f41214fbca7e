"""Graph node ids of 3–4 digits (carried fault): a wide layer's units numbered 100..9999 were written at 7 points over
circles as small as 5 points across, the text spilling over its node onto its neighbours' edges. Each column's font
now shrinks with its longest id and its circles are at least as large as that id's text box."""

from __future__ import annotations

import math

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.graph_figures import graph_figure, node_sizes


def _graph(units: list[int]) -> dict:
    effects = [1.0, 0.8, -0.5, 0.3, 0.1, 0.02][: len(units)]  # the weakest node: the smallest circle
    nodes = [{"id": f"fc:{u}", "layer": "fc", "unit": u, "effect": e} for u, e in zip(units, effects)]
    nodes += [{"id": "output:1", "layer": "output", "unit": 1, "samples": 3}, {"id": "output:7", "layer": "output", "unit": 7, "samples": 1}]
    edges = [{"source": f"fc:{u}", "target": "output:1", "effect": e} for u, e in zip(units, effects)]
    return {"layers": ["fc"], "nodes": nodes, "edges": edges, "meta": {}}


@pytest.mark.parametrize("units", [[5, 123, 4096, 9999, 77, 2048], [1, 3, 0, 9, 5, 7], [10, 99, 42, 11, 12, 13]])
def test_every_node_id_lies_inside_its_circle(units):
    fig = graph_figure(_graph(units))
    FigureCanvasAgg(fig)
    fig.set_dpi(100)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    circles = {}  # centre in pixels -> inner radius in pixels (inside the edge line)
    for c in ax.collections:
        (x, y), = c.get_offsets()
        centre = tuple(round(v, 3) for v in ax.transData.transform((x, y)))
        circles[centre] = (math.sqrt(c.get_sizes()[0]) / 2 - c.get_linewidths()[0] / 2) * fig.dpi / 72
    labels = [t for t in ax.texts if t.get_text().isdigit()]
    assert sorted(int(t.get_text()) for t in labels) == sorted(units + [1, 7])
    for t in labels:
        centre = tuple(round(v, 3) for v in ax.transData.transform(t.xy))
        radius = circles[centre]
        box = t.get_window_extent(renderer)
        corners = [(box.x0, box.y0), (box.x0, box.y1), (box.x1, box.y0), (box.x1, box.y1)]
        assert all(math.dist(p, centre) <= radius + 0.5 for p in corners), (t.get_text(), box, centre, radius)


def test_a_columns_circles_stay_apart_and_its_areas_still_follow_the_effect():
    size, lo, hi = node_sizes(["4096", "9999"])
    assert size == 5 and 30 < lo < hi and math.sqrt(hi) < 0.28 * 72  # the largest circle under the pitch of 0.28 inch
    fig = graph_figure(_graph([5, 123, 4096, 9999, 77, 2048]))
    areas = [float(c.get_sizes()[0]) for c in fig.axes[0].collections][:6]  # the fc column, strongest first
    assert areas == sorted(areas, reverse=True) and areas[0] == pytest.approx(hi) and areas[-1] > lo
