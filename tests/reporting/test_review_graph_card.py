"""newuser36's readability leftover: the causal graph of eight units in each of two layers and three classes was a
489 x 374 figure (0.28 inch a node and 1.5 inches for the title and the legend), which a TensorBoard card (a box of
about 400 x 215 pixels) showed at 0.57. At 0.25 inch a node and 1.25 inches it is 325 high, at 0.66; the markers,
the column titles and the legend stay apart."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.graph_figures import graph_figure


def test_a_graph_of_eight_units_a_layer_fits_a_card_at_two_thirds():
    nodes = [{"id": f"{layer}:{u}", "layer": layer, "unit": u, "effect": (-1) ** u * (8 - u)} for layer in ("fc1", "fc2")
             for u in range(8)]
    nodes += [{"id": f"output:{c}", "layer": "output", "unit": c, "samples": 5 + c} for c in range(3)]
    edges = [{"source": f"fc1:{u}", "target": f"fc2:{7 - u}", "weight": 1.0} for u in range(8)]
    edges += [{"source": f"fc2:{u}", "target": f"output:{u % 3}", "weight": -0.5} for u in range(8)]
    graph = {"layers": ["fc1", "fc2"], "nodes": nodes, "edges": edges,
             "meta": {"class_names": ["cat", "dog", "bird"], "faithfulness": 0.8}}
    fig = graph_figure(graph)
    width, height = fig.get_size_inches() * fig.dpi
    assert min(400 / width, 215 / height) >= 0.66, (width, height)
    ax = fig.axes[0]
    pitch = abs(ax.transData.transform((0, 0))[1] - ax.transData.transform((0, 1))[1])  # pixels between two nodes
    largest = max(math.sqrt(s) for c in ax.collections for s in c.get_sizes()) * fig.dpi / 72
    assert largest + 4 < pitch, (largest, pitch)  # the largest markers of a column apart
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    markers = [c.get_window_extent(renderer) for c in ax.collections]
    legend, title = ax.get_legend().get_window_extent(renderer), ax.title.get_window_extent(renderer)
    columns = [t.get_window_extent(renderer) for t in ax.texts if t.get_text() in ("fc1", "fc2", "output")]
    assert len(columns) == 3 and all(legend.y1 < m.y0 for m in markers)  # the legend under the lowest node
    assert all(m.y1 < c.y0 for m in markers for c in columns) and all(c.y1 <= title.y0 for c in columns)
    assert title.y1 <= height and legend.y0 >= 0
