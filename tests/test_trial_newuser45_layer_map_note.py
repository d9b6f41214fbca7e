"""The layer map card's note under the matrix ran off the figure's right edge: a two-tower recommender explained
through its dense features (newuser45 trial) left five layers unmoved, and 'no intervention moves: model.user_emb,
model.item_emb' was cut at 'emb' in TensorBoard. The note was wrapped at the figure's width in characters of the key's
prose but drawn from the matrix's left edge, after the room of the layer labels, and module paths are wider a
character. It is drawn from the figure's left edge now, wrapped at its measured width."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.layer_map_figures import layer_map_figure

LAYERS = ["model.user_emb", "model.user_tower.0", "model.user_tower.2", "model.item_emb", "model.genre_bag",
          "model.item_tower.0", "model.item_tower.2", "model.head"]
UNMOVED = ["model.user_emb", "model.item_emb", "model.genre_bag", "model.item_tower.0", "model.item_tower.2"]


def _layer_map(unmoved: list[str]) -> dict:
    ids = ["<input>", *LAYERS, "<output>"]
    nodes = [{"id": i, "layers": g} for i, g in zip(ids, [[], *([name] for name in LAYERS), []])]
    edges = [{"source": a, "target": b, "weight": 0.5, "gain": 1.0} for a, b in zip(ids, ids[1:])]
    cka = [[1.0 if i == j else 0.5 for j in range(len(LAYERS))] for i in range(len(LAYERS))]
    return {"layers": LAYERS, "cka": cka, "response": [0.3] * len(LAYERS), "threshold": 0.9, "nodes": nodes,
            "edges": edges, "meta": {"unmoved": unmoved, "left_out": {}}}


@pytest.mark.parametrize("unmoved", [UNMOVED, [f"model.towers.{k}.very_long_module_name_{k}" for k in range(6)]])
def test_the_note_under_the_matrix_stays_inside_the_figure(unmoved: list[str]) -> None:
    fig = layer_map_figure(_layer_map(unmoved))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    width = fig.get_size_inches()[0] * fig.dpi
    (note,) = fig.axes[-1].texts
    box = note.get_window_extent(canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= width
    text = note.get_text()
    assert " ".join(text.split()).startswith("no intervention moves: " + ", ".join(unmoved))  # every name, whole
    assert "white boxes: layers merged into one node" in " ".join(text.split())
