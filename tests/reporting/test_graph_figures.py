"""The layer causal map figure (drawn by ``layer_map_figures``, importable from ``graph_figures``): short, numbered
labels that never overlap, on a canvas sized to its content."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.graph_figures import column_labels, layer_labels, layer_map_figure


def _layer_map(groups: list[list[str]], layers: list[str]) -> dict:
    ids = ["<input>"] + [g[0] if len(g) == 1 else f"{g[0]}..{g[-1]}" for g in groups] + ["<output>"]
    nodes = [{"id": i, "layers": g} for i, g in zip(ids, [[], *groups, []])]
    edges = [{"source": a, "target": b, "weight": 0.9 / (k + 1), "gain": 1.0 / (k + 1)} for k, (a, b) in enumerate(zip(ids, ids[1:]))]
    cka = [[1.0 if i == j else 0.5 for j in range(len(layers))] for i in range(len(layers))]
    return {"kind": "layer_map", "layers": layers, "cka": cka, "response": [0.5] * len(layers), "threshold": 0.9,
            "nodes": nodes, "edges": edges}


LONG = [f"model.vit.vit.encoder.layer.{i}.attention.output.dense_projection_after_attention" for i in range(12)]


@pytest.mark.parametrize("merged", [False, True], ids=["12 nodes", "merged"])
def test_a_long_named_layer_map_has_labels_that_do_not_overlap(merged):
    # ViT module paths were drawn whole, rotated and overlapping, the s/gain texts at 6 points, the canvas 2/3 empty
    groups = [LONG[0:3], LONG[3:4], LONG[4:9], LONG[9:12]] if merged else [[name] for name in LONG]
    fig = layer_map_figure(_layer_map(groups, LONG))
    cka, bars = fig.axes[:2]
    assert "causal nodes" in fig._suptitle.get_text()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.get_size_inches() * fig.dpi
    texts = [*bars.texts, bars.title, cka.title, fig._suptitle]
    assert all(t.get_fontsize() >= 8 for t in [*bars.texts, *cka.get_yticklabels()])
    assert not any("model.vit" in t.get_text() for t in [*texts, *cka.get_yticklabels()])  # the shared prefix is gone
    assert all(len(t.get_text()) <= len("11: ") + 20 for t in cka.get_yticklabels())
    for group in (texts, cka.get_yticklabels(), cka.get_xticklabels()):
        boxes = [t.get_window_extent(renderer) for t in group if t.get_text()]
        assert all(0 <= b.x0 and b.x1 <= width and 0 <= b.y0 and b.y1 <= height for b in boxes)
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert width <= 11 * fig.dpi


def test_the_layer_map_figure_of_graph_figures_is_the_card_of_layer_map_figures():
    """The name users import from ``graph_figures`` (recipes.md before the card moved) draws the card TensorBoard
    shows, not a second drawing of its own."""
    from lightning_causal.reporting import layer_map_figures

    assert layer_map_figure is layer_map_figures.layer_map_figure


def test_layer_labels_strip_the_shared_prefix_like_the_graph_columns():
    vit = ["model.vit.vit.embeddings.patch_embeddings.projection", "model.vit.vit.layers.0.attention.q_proj", "model.vit.classifier"]
    assert layer_labels(vit) == ["…patch_embeddings.projection", "…layers.0.attention.q_proj", "classifier"]
    assert [label.replace("\n", "") for label in column_labels(vit)] == ["vit.embeddings.patch_embeddings.projection",
                                                                         "vit.layers.0.attention.q_proj", "classifier"]
    assert layer_labels(LONG[:2], 24) == ["0.attention…er_attention", "1.attention…er_attention"]  # alike tails: cut in the middle


def test_graph_edge_widths_follow_the_path_effect_not_the_per_layer_weight():
    """Every path effect is a change of the explained output: an edge into a hidden unit that moves it by
    1e-5 (``weight`` 1.0, the strongest into its layer) is drawn thin next to an edge of effect 0.5."""
    from lightning_causal.reporting.graph_figures import graph_figure

    graph = {"layers": ["a", "b"], "meta": {},
             "nodes": [{"id": "a:0", "layer": "a", "unit": 0, "effect": 0.5}, {"id": "b:0", "layer": "b", "unit": 0, "effect": 0.5},
                       {"id": "output:0", "layer": "output", "unit": 0, "samples": 4}],
             "edges": [{"source": "a:0", "target": "b:0", "weight": 1.0, "effect": 1e-5},
                       {"source": "b:0", "target": "output:0", "weight": 1.0, "effect": 0.5}]}
    widths = {tuple(line.get_xdata()): line.get_linewidth() for line in graph_figure(graph).axes[0].lines}
    assert widths[(0, 1)] == pytest.approx(0.4, abs=1e-3) and widths[(1, 2)] == pytest.approx(3.6)
    del graph["edges"][0]["effect"]  # no path effects (an attribution graph's scores): the weights
    widths = {tuple(line.get_xdata()): line.get_linewidth() for line in graph_figure(graph).axes[0].lines}
    assert widths[(0, 1)] == widths[(1, 2)] == pytest.approx(3.6)


def test_an_edge_into_a_layer_nothing_reaches_says_no_gain_instead_of_nan():
    layer_map = {"layers": ["a", "b"], "cka": [[1.0, float("nan")], [float("nan"), float("nan")]], "response": [0.5, 0.0],
                 "threshold": 0.9,
                 "nodes": [{"id": "<input>", "layers": []}, {"id": "a", "layers": ["a"]}, {"id": "b", "layers": ["b"]},
                           {"id": "<output>", "layers": []}],
                 "edges": [{"source": "<input>", "target": "a", "weight": 0.5, "gain": 1.0},
                           {"source": "a", "target": "b", "weight": 0.0, "gain": 0.0},
                           {"source": "b", "target": "<output>", "weight": 0.0, "gain": float("nan")}]}
    texts = [t.get_text() for t in layer_map_figure(layer_map).axes[1].texts]  # each row's s and gain, then the output's
    assert texts == [" 0.5  ×1", " 0  ×0", "output 0  ×–"]
