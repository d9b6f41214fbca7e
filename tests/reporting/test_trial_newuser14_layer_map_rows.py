"""Trial newuser14 (transfer learning): the layer map of a backbone kept as ``nn.Sequential(stem, stages, ...)``.

Its default layers are ``backbone.1.0`` ... ``backbone.1.7``; their labels keep the number before the
block's (``1.0`` ... ``1.7``), and the CKA matrix's rows read ``"1.0 0"``, ``"1.1 1"``: two numbers side
by side, no telling which is the row. The rows now read ``"0: 1.0"``, the number before the colon the matrix's row
(the card of one row a layer, ``layer_map_figures``, draws no second list of the nodes: a node of several layers is
the white box over its rows).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from lightning_causal.reporting.layer_map_figures import layer_map_figure  # noqa: E402

LAYERS = [f"backbone.1.{i}" for i in range(4)]


def _layer_map() -> dict:
    nodes = [{"id": "<input>", "layers": []}, {"id": "a", "layers": LAYERS[:2]}, {"id": "b", "layers": LAYERS[2:]},
             {"id": "<output>", "layers": []}]
    edges = [{"source": s["id"], "target": t["id"], "weight": 0.5, "gain": 1.0} for s, t in zip(nodes, nodes[1:])]
    cka = [[1.0 if i == j else 0.95 if (i < 2) == (j < 2) else 0.5 for j in range(4)] for i in range(4)]
    return {"layers": LAYERS, "cka": cka, "response": [0.5] * 4, "threshold": 0.9, "nodes": nodes, "edges": edges}


def test_cka_rows_read_row_then_layer():
    fig = layer_map_figure(_layer_map())
    cka = fig.axes[0]
    rows = [t.get_text() for t in cka.get_yticklabels()]
    assert rows == ["0: 1.0", "1: 1.1", "2: 1.2", "3: 1.3"]
    assert [t.get_text() for t in cka.get_xticklabels()] == ["0", "1", "2", "3"]
    assert [(p.get_xy(), p.get_width()) for p in cka.patches] == [((-0.4, -0.4), 1.8), ((1.6, 1.6), 1.8)]  # rows 0-1, 2-3
