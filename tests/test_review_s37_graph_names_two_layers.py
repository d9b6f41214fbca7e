"""Unit names of two deep layers of one kind (encoder.layers.10.mlp.fc1[37] beside fc1[38] and layer 11's) stay apart
and readable in the graph figure: each layer's pair was cut apart on its own into the same two labels
('encoder.…p.fc1[37]' in both layers), and every name fell back to a bare position number ('0: encoder.layers…'),
no unit readable (review of afa92b7f; figure_style.short_labels)."""

from lightning_causal.reporting.figure_style import short_labels
from lightning_causal.reporting.graph_figures import graph_figure

LAYERS = ["encoder.layers.10.mlp.fc1", "encoder.layers.11.mlp.fc1"]


def test_units_of_two_layers_of_one_kind_read_apart_with_their_layer_and_unit():
    nodes = [{"id": f"{layer}:{u}", "layer": layer, "unit": u, "effect": 1.0 - 0.1 * u} for layer in LAYERS for u in (37, 38)]
    nodes += [{"id": "output:0", "layer": "output", "unit": 0, "samples": 3}]
    edges = [{"source": f"{LAYERS[0]}:37", "target": f"{LAYERS[1]}:38", "effect": 0.5},
             {"source": f"{LAYERS[1]}:38", "target": "output:0", "effect": 0.7}]
    names = {layer: [f"{layer}[{k}]" for k in range(64)] for layer in LAYERS}
    fig = graph_figure({"layers": LAYERS, "nodes": nodes, "edges": edges, "meta": {"unit_names": names}})
    drawn = [t.get_text() for t in fig.axes[0].texts if "…" in t.get_text()]
    assert len(drawn) == 4 and all(len(t) <= 18 for t in drawn), drawn
    for layer in (10, 11):
        for unit in (37, 38):
            assert sum(t.endswith(f"{layer}.mlp.fc1[{unit}]") for t in drawn) == 1, drawn


def test_groups_cut_apart_alike_are_cut_together_before_numbering():
    texts = [f"encoder.layers.{k}.mlp.{fc}[37]" for k in (10, 11) for fc in ("fc1", "fc2")] + ["age"]
    out = short_labels(texts, 18)
    assert len(set(out)) == len(out) and not any(": " in t for t in out), out  # apart, no position numbers
    assert [t[-14:] for t in out[:4]] == [t[-14:] for t in texts[:4]] and out[4] == "age", out
