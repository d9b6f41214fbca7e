"""The causal graph's nodes are pink or blue (the sign of the unit's effect) and of several sizes
(|effect|), but its legend named the edges only (newuser12 trial: a blue filter among pink ones in a
digits CNN's graph, unexplained on the card). The legend now has a row for the nodes, inside the
figure and overlapping no node or label."""

import pytest
from matplotlib.colors import to_rgba

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from lightning_causal.reporting.graph_figures import graph_figure  # noqa: E402


def _graph(units=8):
    nodes = [{"id": f"a:{u}", "layer": "a", "unit": u, "effect": 1.0 - 0.3 * u} for u in range(units)]
    nodes += [{"id": f"output:{c}", "layer": "output", "unit": c, "samples": 3} for c in range(2)]
    edges = [{"source": f"a:{u}", "target": f"output:{u % 2}", "weight": 0.5 - 0.2 * u} for u in range(units)]
    return {"layers": ["a"], "nodes": nodes, "edges": edges, "meta": {"class_names": ["malignant", "benign"]}}


@pytest.mark.parametrize("units", [2, 8])
def test_the_legend_says_what_node_colour_and_size_are(units):
    fig = graph_figure(_graph(units))
    legend = fig.axes[0].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert {"positive path effect", "negative path effect"} <= set(texts)
    marks = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert to_rgba(marks["unit effect > 0"].get_markerfacecolor()) == to_rgba("#f4c7c3")
    assert to_rgba(marks["unit effect < 0"].get_markerfacecolor()) == to_rgba("#c6dbef")
    assert any("area ∝ |effect|" in t for t in texts)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0
    ax = fig.axes[0]
    for text in ax.texts:  # node numbers and class names
        assert not box.overlaps(text.get_window_extent(renderer)), text.get_text()
    for dots in ax.collections:  # the nodes: each a disc of area s points² around its centre
        [(x, y)] = ax.transData.transform(dots.get_offsets())
        r = (float(dots.get_sizes()[0]) ** 0.5 / 2) * fig.dpi / 72
        assert y - r > box.y1 or not box.x0 - r < x < box.x1 + r, (x, y, r, box)
