"""The causal graph in a TensorBoard card (a box of about 400 x 215 pixels): a graph of eight units in
each of two layers was a 445 x 510 figure (0.45 inch per node), shown at 0.42, its title, column names
and unit numbers unreadable. The nodes are 0.28 inch apart now, their markers at most 16 points across."""

import math

from lightning_causal.reporting.graph_figures import graph_figure


def _graph(units: int) -> dict:
    nodes = [{"id": f"{layer}:{u}", "layer": layer, "unit": u, "effect": (u + 1) / units}
             for layer in ("net.1", "net.3") for u in range(units)]
    nodes += [{"id": f"output:{c}", "layer": "output", "unit": c, "samples": 5} for c in range(2)]
    edges = [{"source": f"net.1:{u}", "target": f"net.3:{u}", "weight": 1.0, "effect": 0.1} for u in range(units)]
    edges += [{"source": f"net.3:{u}", "target": "output:0", "weight": 1.0, "effect": 0.2} for u in range(units)]
    return {"layers": ["net.1", "net.3"], "nodes": nodes, "edges": edges, "meta": {"faithfulness": 0.5}}


def test_a_graph_of_eight_units_per_layer_fits_a_card_at_more_than_half_size():
    fig = graph_figure(_graph(8))
    width, height = fig.get_size_inches() * fig.dpi
    assert min(400 / width, 215 / height) > 0.55, (width, height)  # was 0.42
    ax = fig.axes[0]
    [title] = [ax.get_title()]
    assert title == "causal graph: 16 nodes, 16 edges, faithfulness 0.50"
    # markers do not overlap: the largest is narrower than the distance between two nodes of a column
    pitch = (ax.transData.transform((0, 0))[1] - ax.transData.transform((0, 1))[1])  # pixels between nodes
    largest = max(math.sqrt(s) for c in ax.collections for s in c.get_sizes()) * fig.dpi / 72  # points -> pixels
    assert largest < abs(pitch), (largest, pitch)
    texts = [t.get_text() for t in ax.texts]
    assert {"net.1", "net.3", "output"} <= set(texts) and {str(u) for u in range(8)} <= set(texts)
