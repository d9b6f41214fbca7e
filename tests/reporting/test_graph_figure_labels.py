"""The causal graph figure's column titles, title and nodes do not overlap. The text example's graph
(two layers of heads and two of neurons: column titles of two lines, "0.attention.self" over "(heads)")
drew its title across the column titles, because the titles sat in data units above the top node and
the axes left them no room below the title."""

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.graph_figures import graph_figure


def _graph(layers: list[str], units: int, layouts: dict | None = None) -> dict:
    nodes = [{"id": f"{layer}:{u}", "layer": layer, "unit": u, "effect": (u + 1) / units} for layer in layers for u in range(units)]
    nodes += [{"id": f"output:{c}", "layer": "output", "unit": c, "samples": 5} for c in range(2)]
    edges = [{"source": f"{a}:{u}", "target": f"{b}:{(u + 1) % units}", "weight": 1.0, "effect": 0.1}
             for a, b in zip(layers, layers[1:]) for u in range(units)]
    edges += [{"source": f"{layers[-1]}:{u}", "target": "output:0", "weight": 1.0, "effect": 0.2} for u in range(units)]
    return {"layers": layers, "nodes": nodes, "edges": edges, "meta": {"faithfulness": 0.9, "unit_layouts": layouts or {}}}


BERT = ["bert.encoder.layer.0.attention.self", "bert.encoder.layer.0.intermediate",
        "bert.encoder.layer.1.attention.self", "bert.encoder.layer.1.intermediate"]
LAYOUTS = {name: ({"unit_dim": -1, "num_heads": 4} if "attention" in name else {"unit_dim": -1}) for name in BERT}


@pytest.mark.parametrize("graph", [_graph(BERT, 4, LAYOUTS), _graph(["net.1", "net.3"], 2), _graph(["a.b.c.d", "a.b.e"], 8)],
                         ids=["two-line column titles", "short graph", "tall graph"])
def test_title_column_titles_and_nodes_do_not_overlap(graph):
    fig = graph_figure(graph)
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    title = ax.title.get_window_extent(renderer)
    labels = [t for t in ax.texts if t.get_fontweight() == "bold"]
    assert len(labels) == len(graph["layers"]) + 1
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert all(b.y1 < title.y0 for b in boxes), ([b.y1 for b in boxes], title.y0)  # every column title below the title
    top_node = max(ax.transData.transform((0, y))[1] for c in ax.collections for _, y in c.get_offsets())
    assert all(b.y0 > top_node for b in boxes)  # and above the nodes
    assert title.y1 <= fig.bbox.y1 + 1  # the title inside the figure
