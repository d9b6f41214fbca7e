"""A causal graph over seven blocks of a residual MLP of 100 (``CausalGraphAudit([f"blocks.{i}.fc" for i in
range(0, 100, 16)])``) has paths from every chosen layer to every later one and to the output, around the columns
between (the residual stream). Each such edge is an arc over the columns; its height grew with the columns it spans
(matplotlib's ``arc3`` at ``rad=0.25``: a quarter of its length), so an arc from the first layer to the output rose
about 0.9 inch over a figure that keeps 0.3 inch above its top node: the arcs left the drawing at its top, cut off
mid-way, and ran under the column titles. Every arc now stays inside the axes, below the column titles."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from lightning_causal.reporting.graph_figures import graph_figure  # noqa: E402


def _graph(n_layers: int, per_layer: int) -> dict:
    """``n_layers`` layers of ``per_layer`` units and 10 classes, an edge from every unit to every unit of every later
    layer and of the output (as a residual stream's graph), effects falling with the columns skipped."""
    layers = [f"blocks.{16 * i}.fc" for i in range(n_layers)]
    nodes = [{"id": f"{layer}:{u}", "layer": layer, "unit": u, "effect": 1.0 / (u + 1)} for layer in layers for u in range(per_layer)]
    nodes += [{"id": f"output:{c}", "layer": "output", "unit": c, "samples": 5} for c in range(10)]
    columns = [[n["id"] for n in nodes if n["layer"] == layer] for layer in [*layers, "output"]]
    edges = [{"source": a, "target": b, "effect": 1.0 / (j - i), "weight": 1.0}
             for i, sources in enumerate(columns) for j in range(i + 1, len(columns)) for a in sources for b in columns[j]]
    return {"layers": layers, "nodes": nodes, "edges": edges, "meta": {"faithfulness": 0.6, "baseline": "zero"}}


@pytest.mark.parametrize("n_layers, per_layer", [(3, 8), (7, 8), (7, 16), (12, 2)])
def test_every_arc_of_a_deep_graph_stays_inside_the_drawing_below_the_column_titles(n_layers, per_layer):
    fig = graph_figure(_graph(n_layers, per_layer))
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    ax = fig.axes[0]
    arcs = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert arcs  # edges that skip a column are arcs
    box = ax.get_window_extent(renderer)
    titles = [t for t in ax.texts if t.get_text().startswith(("0.fc", "16.fc", "output"))]
    assert titles
    bottom_of_titles = min(t.get_window_extent(renderer).y0 for t in titles)
    for arc in arcs:
        extent = arc.get_window_extent(renderer)
        assert extent.y1 <= box.y1 + 0.5, (arc, extent.y1, box.y1)  # not cut off by the axes (was ~0.6 inch above)
        assert extent.y1 <= bottom_of_titles, (extent.y1, bottom_of_titles)  # under the column titles
        assert extent.x0 >= box.x0 - 0.5 and extent.x1 <= box.x1 + 0.5
