"""The causal-graph and layer-map figures label layers without the path they all share: a graph of a CLIP-like
model's image tower drew ``image.fc`` as ``fc``, which a figure of its text tower drew alike for ``text.fc``. The title
now names the path left out (``causal graph of image``), so the two towers' figures differ; layers of both towers keep
their paths in the labels and the title names none."""

from lightning_causal.reporting.figure_style import left_out_prefix
from lightning_causal.reporting.graph_figures import column_labels, graph_figure, layer_map_figure


def _graph(layers):
    nodes = [{"id": f"{a}:0", "layer": a, "unit": 0, "effect": 0.5} for a in layers]
    nodes.append({"id": "output:0", "layer": "output", "unit": 0, "samples": 4})
    edges = [{"source": f"{a}:0", "target": f"{b}:0", "weight": 0.5, "effect": 0.3} for a, b in zip(layers, layers[1:])]
    edges.append({"source": f"{layers[-1]}:0", "target": "output:0", "weight": 1.0, "effect": 0.4})
    return {"layers": layers, "nodes": nodes, "edges": edges, "meta": {"faithfulness": 0.8}}


def _map(layers):
    n = len(layers)
    return {"layers": layers, "cka": [[1.0 if i == j else 0.5 for j in range(n)] for i in range(n)], "response": [0.5] * n,
            "threshold": 0.9, "nodes": [{"id": "<input>", "layers": []}, *({"id": a, "layers": [a]} for a in layers),
                                        {"id": "<output>", "layers": []}],
            "edges": [{"source": "<input>", "target": layers[0], "weight": 0.5, "gain": 1.0},
                      {"source": layers[-1], "target": "<output>", "weight": 0.1, "gain": 0.2}]}


def test_the_tower_left_out_of_the_labels_is_named_in_the_title():
    image, text = ["image.fc", "image.proj"], ["text.fc", "text.proj"]
    assert column_labels(image + ["output"]) == column_labels(text + ["output"]) == ["fc", "proj", "output"]
    titles = [graph_figure(_graph(t)).axes[0].get_title() for t in (image, text)]
    assert titles == ["causal graph of image: 2 nodes, 2 edges, faithfulness 0.80",
                      "causal graph of text: 2 nodes, 2 edges, faithfulness 0.80"]
    maps = [layer_map_figure(_map(t))._suptitle.get_text() for t in (image, text)]
    assert maps == ["layer causal map of image: 2 causal nodes", "layer causal map of text: 2 causal nodes"]


def test_labels_that_keep_their_paths_name_nothing_more():
    both = ["image.fc", "text.fc"]
    assert graph_figure(_graph(both)).axes[0].get_title().startswith("causal graph: ")
    assert layer_map_figure(_map(both))._suptitle.get_text() == "layer causal map: 2 causal nodes"
    assert left_out_prefix(["net.1", "net.3"]) == ""  # the labels keep net. beside a bare number
    assert left_out_prefix(["model.vit.vit.layers.0.attention", "model.vit.classifier"]) == "model.vit"
