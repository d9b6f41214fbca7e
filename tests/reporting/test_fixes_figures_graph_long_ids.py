"""Graph node ids of 6 or more digits (carried fault): a wide layer's flattened positions (123456) were written on one
line at 4 points, wider than the pitch of a column's nodes, over circles up to 20 points across at a pitch of 18: each id
spilled over its circle and neighbouring circles overlapped. Long ids are now broken into lines of at most 4 digits
(node_label), written smaller where even so they do not fit, and no circle is wider than the pitch."""

from __future__ import annotations

import math

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.graph_figures import graph_figure, node_label


def _graph(units: list[int]) -> dict:
    effects = [1.0 - 0.06 * k for k in range(len(units))]  # the strongest nodes side by side: the largest circles
    nodes = [{"id": f"fc:{u}", "layer": "fc", "unit": u, "effect": e} for u, e in zip(units, effects)]
    nodes += [{"id": "output:1", "layer": "output", "unit": 1, "samples": 3}]
    edges = [{"source": f"fc:{u}", "target": "output:1", "effect": e} for u, e in zip(units, effects)]
    return {"layers": ["fc"], "nodes": nodes, "edges": edges, "meta": {}}


@pytest.mark.parametrize("digits", [5, 6, 7, 8, 9, 12])
@pytest.mark.parametrize("count", [3, 16])  # a short column, and the tallest drawn (the smallest pitch)
def test_long_ids_lie_inside_their_circles_which_stay_apart(digits, count):
    units = [10 ** (digits - 1) + 987654321 % 10 ** (digits - 1) + k for k in range(count)]
    fig = graph_figure(_graph(units))
    FigureCanvasAgg(fig)
    fig.set_dpi(200)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    nodes = []  # (centre in pixels, outer radius, inner radius inside the edge line), the fc column top to bottom
    for c in ax.collections[:count]:
        (x, y), = c.get_offsets()
        outer = math.sqrt(c.get_sizes()[0]) / 2 * fig.dpi / 72
        nodes.append((tuple(ax.transData.transform((x, y))), outer, outer - c.get_linewidths()[0] / 2 * fig.dpi / 72))
    texts = {t.get_text(): t for t in ax.texts}
    boxes = []
    for u, (centre, _, inner) in zip(units, nodes):
        t = texts[node_label(str(u))]
        assert t.get_text().replace("\n", "") == str(u)  # every digit written, in order
        box = t.get_window_extent(renderer)
        corners = [(box.x0, box.y0), (box.x0, box.y1), (box.x1, box.y0), (box.x1, box.y1)]
        assert all(math.dist(p, centre) <= inner + 0.5 for p in corners), (t.get_text(), box, centre, inner)
        boxes.append(box)
    for (c0, r0, _), (c1, r1, _), b0, b1 in zip(nodes, nodes[1:], boxes, boxes[1:]):
        assert math.dist(c0, c1) >= r0 + r1, (digits, count, math.dist(c0, c1), r0 + r1)  # neighbours do not touch
        assert b0.y0 >= b1.y1  # nor do their ids


def test_node_label_keeps_short_ids_on_one_line_and_breaks_long_ones_evenly():
    assert [node_label(u) for u in ("7", "12345", "123456", "12345678", "1234567890")] == [
        "7", "12345", "123\n456", "1234\n5678", "1234\n567\n890"]
