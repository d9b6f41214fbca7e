"""The layer map's TensorBoard card (a box of about 400 x 215 pixels) showed the CKA matrix beside a chain of
circles, 659 x 325 pixels for a 4-layer CNN or MLP, 701 x 325 for a 2-layer BERT, 748 x 400 for a 6-conv CNN and
725 x 620 for a 12-layer MLP: at 0.61, 0.57, 0.53 and 0.35 of its size, its 8-point names about 4 points high.
It now draws one row a layer: the CKA matrix's row and, on the same row, the layer's relative response ``s`` as a
bar with its value and, where a causal node begins, its gain ``×g``; the output's ``s`` on the row under the last
layer; the key under both. 2 to 12 layers fit at 0.66 or more (names cut to 20 characters), every text 8 points or more."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from lightning_causal.audits.base import AuditResult  # noqa: E402
from lightning_causal.reporting.layer_map_figures import layer_map_figure  # noqa: E402
from lightning_causal.reporting.tensorboard import TensorBoardRenderer  # noqa: E402

TAG = "causal/layer_map/graphs/layer_map"


def _map(layers: list[str], groups: list[list[int]], response: list[float], meta: dict | None = None) -> dict:
    """A layer map over ``layers`` whose causal nodes are ``groups`` (row numbers), edge ``s`` and gains from
    ``response`` as ``layer_causal_map`` computes them (the input's ``s`` 1, the output's half the last layer's)."""
    ids = ["<input>"] + [layers[g[0]] if len(g) == 1 else f"{layers[g[0]]}..{layers[g[-1]]}" for g in groups] + ["<output>"]
    nodes = [{"id": i, "layers": [layers[k] for k in g]} for i, g in zip(ids, [[], *groups, []])]
    heads = [1.0] + [response[g[0]] for g in groups] + [response[-1] / 2]
    tails = [1.0] + [response[g[-1]] for g in groups]
    edges = [{"source": a, "target": b, "weight": s, "gain": s / t if t > 0 else math.nan}
             for a, b, s, t in zip(ids, ids[1:], heads[1:], tails)]
    n = len(layers)
    cka = [[1.0 if i == j else 0.95 if any(i in g and j in g for g in groups) else 0.5 for j in range(n)] for i in range(n)]
    return {"kind": "layer_map", "layers": layers, "cka": cka, "response": response, "threshold": 0.9,
            "nodes": nodes, "edges": edges, "meta": meta or {}}


def _card(layer_map: dict):
    """The figure TensorBoard is given, through the renderer's public path."""
    return TensorBoardRenderer().figures([AuditResult("layer_map", graphs={"layer_map": layer_map})])[TAG]


def _texts(fig):
    """Every visible text of the figure: titles, tick labels, axis labels, annotations."""
    out = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        out += [ax.title, *ax.texts]
        if ax.axison:  # the key's axes are off: their default ticks are not drawn
            out += [ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]
    return [t for t in out if t.get_text() and t.get_visible()]


MLP12 = [f"model.net.{2 * i}" for i in range(12)]
CASES = {  # the trial's models: (layers, causal nodes)
    "mlp4": (["model.net.0", "model.net.2", "model.net.4", "model.net.6"], [[0], [1], [2], [3]]),
    "cnn4": (["model.conv1", "model.conv2", "model.fc1", "model.fc2"], [[0], [1, 2], [3]]),
    "cnn7": ([f"model.features.{2 * i}" for i in range(6)] + ["model.head.2"], [[0], [1], [2, 3], [4], [5], [6]]),
    "bert2": (["model.model.bert.encoder.layer.0", "model.model.bert.encoder.layer.1"], [[0, 1]]),
    "bert4": ([f"model.model.bert.encoder.layer.{i}" for i in range(4)], [[0], [1, 2, 3]]),
    "mlp12": (MLP12, [[0], [1], [2], [3], [4, 5], [6, 7], [8, 9, 10], [11]]),
    "vit12": ([f"model.vit.encoder.layer.{i}.attention.output.dense_projection" for i in range(12)], [[i] for i in range(12)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_layer_map_of_2_to_12_layers_fits_a_card_at_two_thirds_with_8_point_text_inside(case):
    layers, groups = CASES[case]
    fig = _card(_map(layers, groups, [0.5 * 0.7 ** i for i in range(len(layers))],
                     {"unmoved": [layers[-1]]} if case == "cnn7" else None))
    width, height = fig.get_size_inches() * fig.dpi
    assert min(400 / width, 215 / height) >= 0.66, (width, height)  # was 0.35 to 0.61
    texts = _texts(fig)
    assert min(t.get_fontsize() for t in texts) >= 8
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    boxes = [t.get_window_extent(renderer) for t in texts]
    for t, b in zip(texts, boxes):  # inside the figure
        assert b.x0 >= -1 and b.x1 <= width + 1 and b.y0 >= -1 and b.y1 <= height + 1, (t.get_text(), b)
    for i, a in enumerate(boxes):  # no two texts overlap
        for j in range(i + 1, len(boxes)):
            assert not a.overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows[0].startswith("0: ") and not any("model." in r for r in rows)  # numbered, the shared prefix gone
    assert len(set(rows)) == len(rows) and max(len(r) for r in rows) <= 4 + 20


def test_each_row_reads_its_layer_s_beside_its_cka_row_and_the_gain_where_a_node_begins():
    layers = ["conv1", "conv2", "fc1", "fc2"]
    fig = layer_map_figure(_map(layers, [[0], [1, 2], [3]], [0.5, 0.25, 0.2, 0.1]))
    cka, bars = fig.axes[0], fig.axes[1]
    assert [t.get_text() for t in cka.get_yticklabels()] == ["0: conv1", "1: conv2", "2: fc1", "3: fc2"]
    widths = [p.get_width() for p in bars.patches]
    assert widths == pytest.approx([0.5, 0.25, 0.2, 0.1])
    # the edge into conv2..fc1 carries s(conv2) / s(conv1) = 0.5, into fc2 s(fc2) / s(fc1) = 0.5, the output 0.05 / 0.1
    assert [t.get_text() for t in bars.texts] == [" 0.5  ×0.5", " 0.25  ×0.5", " 0.2", " 0.1  ×0.5", "output 0.05  ×0.5"]
    boxes = [p for p in cka.patches if isinstance(p, Rectangle)]
    assert [(p.get_xy(), p.get_width()) for p in boxes] == [((0.6, 0.6), 1.8)]  # conv2 and fc1 merged: one box
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for label, bar in zip(cka.get_yticklabels(), bars.patches):  # a bar on its layer's row of the matrix
        b = bar.get_window_extent(renderer)
        assert abs(label.get_window_extent(renderer).y0 + label.get_window_extent(renderer).height / 2
                   - (b.y0 + b.y1) / 2) < 1.5
    assert [p.get_facecolor() for p in bars.patches][1] == [p.get_facecolor() for p in bars.patches][2]  # one node, one shade
    assert [p.get_facecolor() for p in bars.patches][0] != [p.get_facecolor() for p in bars.patches][1]


def test_the_key_says_what_a_bar_a_gain_and_a_box_are_and_names_the_layers_not_drawn():
    meta = {"unmoved": ["net.5"], "left_out": {"net.9": "a leaf no intervention reaches"}}
    fig = layer_map_figure(_map(["net.0", "net.3"], [[0], [1]], [0.4, 0.0], meta))
    key = " ".join(t.get_text().replace("\n", " ") for t in fig.axes[-1].texts)
    assert "s = E‖Δh‖ / E‖h‖" in key and "×g: gain, s over s of the node above" in key
    assert "white boxes: layers merged into one node (CKA >= 0.90)" in key
    assert "no intervention moves: net.5" in key and "net.9 (a leaf no intervention reaches)" in key
    # a layer nothing reaches: a bar of 0 and an undefined gain after it, not 'nan'
    assert [t.get_text() for t in fig.axes[1].texts] == [" 0.4  ×0.4", " 0  ×0", "output 0  ×–"]


def test_a_capped_chain_says_how_many_nodes_and_the_gain_over_those_not_drawn():
    layers = [f"net.{i}" for i in range(40)]
    response = [0.5 * (0.3 if i % 5 == 0 else 0.98) ** i for i in range(40)]
    fig = _card(_map(layers, [[i] for i in range(40)], response))
    assert fig._suptitle.get_text() == "layer causal map: 16 of 40 causal nodes"
    assert fig.axes[0].get_title() == "linear CKA, 16 of 40 layers"
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert len(texts) == 17 and any(" over " in t for t in texts)
    over = next(t for t in texts if " over " in t)
    assert math.isfinite(float(over.split("×")[1].split(" over ")[0]))


@pytest.mark.parametrize("bad", [None, [], {"layers": ["a"]}])
def test_a_layer_map_figure_of_something_else_is_refused_naming_the_argument(bad):
    with pytest.raises(ValueError, match="Expected argument `layer_map` to be LayerCausalMap.to_dict()"):
        layer_map_figure(bad)
