"""The causal graph figure drew every node of a column (newuser32 trial, a 1000-class model): its output column
holds one node per class the probe predicts, 36 of a probe of 128 samples and about 200 of an ImageNet probe of
256, and ``CausalGraphAudit(top_k=None)`` keeps hundreds of units per layer. The figure grew 0.28 inch a node:
700 x 8550 pixels for 300 units a layer, which a TensorBoard card (about 400 x 215 pixels) shrinks to a strip.
A column now draws at most 16 nodes, a layer's first ones (strongest first, as the audit lists them) and the
classes with the strongest edges into them; its title says how many of how many it draws."""

from lightning_causal.reporting.graph_figures import graph_figure


def _graph(units: int, classes: int) -> dict:
    nodes = [{"id": f"fc:{u}", "layer": "fc", "unit": u, "effect": 1.0 - u / 100} for u in range(units)]
    nodes += [{"id": f"output:{c}", "layer": "output", "unit": c, "samples": 2} for c in range(classes)]
    edges = [{"source": "fc:0", "target": "output:30", "weight": 1.0, "effect": 1.0},
             {"source": "fc:1", "target": "output:35", "weight": 0.5, "effect": 0.5}]
    return {"layers": ["fc"], "nodes": nodes, "edges": edges, "meta": {"class_names": [f"class {c}" for c in range(40)]}}


def _drawn(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_a_column_draws_at_most_16_nodes_and_says_of_how_many() -> None:
    fig = graph_figure(_graph(20, 40))
    texts = _drawn(fig)
    assert "fc\n(16 of 20)" in texts and "output\n(16 of 40)" in texts
    units = [int(t) for t in texts if t.isdigit()]
    assert units[:16] == list(range(16))  # the layer's first (strongest) units
    classes = units[16:]
    assert len(classes) == 16 and {30, 35} <= set(classes) and classes == sorted(classes)  # the classes with edges, in order
    assert "class 30" in texts and "class 39" not in texts
    assert fig.get_size_inches()[1] == graph_figure(_graph(16, 16)).get_size_inches()[1]  # as tall as 16 nodes a column
    assert "causal graph: 20 nodes, 2 edges" in fig.axes[0].get_title()  # the graph's own numbers


def test_a_column_of_16_nodes_is_drawn_whole() -> None:
    texts = _drawn(graph_figure(_graph(16, 16)))
    assert "fc" in texts and "output" in texts and not any(" of " in t for t in texts)
    assert sum(t.isdigit() for t in texts) == 32
