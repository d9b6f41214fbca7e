"""The layer map's chain labels each edge ``s 0.023, gain 0.54`` (newuser12 trial: an MLP and a CNN on
digits): nothing on the card said what ``s`` and ``gain`` are, nor what a node's size shows; the
definitions were in methods.md only. The card now carries a key under the CKA matrix, inside the
figure and overlapping no other text (the card of one row a layer: under the matrix and the bars of ``s``)."""

import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from lightning_causal.reporting.layer_map_figures import layer_map_figure  # noqa: E402


def _map(meta=None):
    layers = ["net.0", "net.3", "net.7"]
    nodes = [{"id": "<input>", "layers": []}] + [{"id": name, "layers": [name]} for name in layers] + [
        {"id": "<output>", "layers": []}]
    ids = [node["id"] for node in nodes]
    edges = [{"source": a, "target": b, "weight": 0.02, "gain": 0.5} for a, b in zip(ids, ids[1:])]
    return {"layers": layers, "cka": [[1.0, 0.7, 0.4], [0.7, 1.0, 0.6], [0.4, 0.6, 1.0]], "response": [0.02] * 3,
            "threshold": 0.9, "nodes": nodes, "edges": edges, "meta": meta or {}}


def _texts(fig):
    return [t for ax in fig.axes for t in ax.texts if t.get_text()]


@pytest.mark.parametrize("meta", [{}, {"unmoved": ["net.5"], "left_out": {"net.9": "a leaf no intervention reaches"}}])
def test_the_card_says_what_s_and_gain_are(meta):
    fig = layer_map_figure(_map(meta))
    key = " ".join(t.get_text().replace("\n", " ") for t in _texts(fig))
    assert "s = E‖Δh‖ / E‖h‖" in key and "×g: gain, s over s of the node above" in key
    if meta:
        assert "no intervention moves: net.5" in key
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    extents = [t.get_window_extent(renderer) for t in _texts(fig)]
    for e in extents:  # inside the figure
        assert e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1 and e.y0 >= box.y0 - 1 and e.y1 <= box.y1 + 1, e
    for i, a in enumerate(extents):  # no two texts overlap
        for b in extents[i + 1:]:
            assert not a.overlaps(b), (a, b)
