"""The causal graph figure's unit names (``meta["unit_names"]``) and class names stay apart when cut: the units of a deep
layer, ``encoder.layers.11.mlp.fc1[37]`` beside ``...fc2[37]``, all read ``encoder.layers.11…`` when cut at the end."""

from lightning_causal.reporting.graph_figures import graph_figure

LAYERS = ["encoder.layers.11.mlp.fc1", "encoder.layers.11.mlp.fc2"]


def _graph(class_names: list[str]) -> dict:
    nodes = [{"id": f"{layer}:{u}", "layer": layer, "unit": u, "effect": 1.0 - 0.1 * u} for layer in LAYERS for u in (37, 38)]
    nodes += [{"id": f"output:{k}", "layer": "output", "unit": k, "samples": 3} for k in (0, 1)]
    edges = [{"source": f"{LAYERS[0]}:37", "target": f"{LAYERS[1]}:38", "effect": 0.5},
             {"source": f"{LAYERS[1]}:38", "target": "output:1", "effect": 0.7},
             {"source": f"{LAYERS[1]}:37", "target": "output:0", "effect": -0.3}]
    names = {layer: [f"{layer}[{k}]" for k in range(64)] for layer in LAYERS}
    return {"layers": LAYERS, "nodes": nodes, "edges": edges, "meta": {"unit_names": names, "class_names": class_names}}


def test_unit_names_of_one_deep_layer_read_apart():
    fig = graph_figure(_graph(["neg", "pos"]))
    texts = [t.get_text() for t in fig.axes[0].texts]
    drawn = [t for t in texts if t.startswith("encoder")]
    assert len(drawn) == 4 and len(set(drawn)) == 4, drawn  # four units, four names
    assert all(len(t) <= 18 for t in drawn), drawn
    for layer in ("fc1", "fc2"):
        for unit in (37, 38):
            assert sum(t.endswith(f"{layer}[{unit}]") for t in drawn) == 1, drawn  # the distinguishing tail kept


def test_class_names_beside_output_nodes_read_apart():
    fig = graph_figure(_graph(["sentiment_of_the_review_negative", "sentiment_of_the_review_positive"]))
    texts = [t.get_text() for t in fig.axes[0].texts]
    classes = [t for t in texts if t.startswith("sentimen")]
    assert len(classes) == 2 and len(set(classes)) == 2, classes
    assert {c.endswith("negative") for c in classes} == {True, False}, classes


def test_short_names_are_drawn_whole():
    g = _graph(["neg", "pos"])
    g["meta"]["unit_names"] = {layer: [f"u{k}" for k in range(64)] for layer in LAYERS}
    texts = [t.get_text() for t in graph_figure(g).axes[0].texts]
    assert {"u37", "u38", "neg", "pos"} <= set(texts)
