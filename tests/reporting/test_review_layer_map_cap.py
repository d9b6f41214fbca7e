"""A layer map of a deep flat model (newuser32 trial: a Sequential of 62 layers) drew every causal node in its chain,
0.42 to 0.55 inch each, and every layer in its CKA matrix, 0.17 inch each: a 16 x 32-inch figure, which a
TensorBoard card shrinks past reading. The chain draws at most 16 causal nodes, those whose incoming gain is
farthest from 1, an edge over the left-out ones carrying the product of their gains; the matrix the ends of the
drawn nodes; both headings say how many of how many. (Drawn by ``layer_map_figures``' card of one row a layer: a drawn
node's gain on its first row, ``×2.2 over 1``.)"""

import math

from lightning_causal.reporting.layer_map_figures import layer_map_figure

N = 40


def _map(n: int = N) -> dict:
    layers = [f"l{i}" for i in range(n)]
    gains = [2.0 if i % 2 == 0 and i <= 30 else 1.1 for i in range(n)]  # 16 nodes where the response doubles
    nodes = [{"id": "<input>", "layers": []}] + [{"id": name, "layers": [name]} for name in layers] + [{"id": "<output>", "layers": []}]
    ids = [node["id"] for node in nodes]
    edges = [{"source": a, "target": b, "weight": 0.5, "gain": gains[k] if k < n else 0.5} for k, (a, b) in enumerate(zip(ids, ids[1:]))]
    cka = [[1.0 if i == j else 0.5 for j in range(n)] for i in range(n)]
    return {"layers": layers, "cka": cka, "response": [0.5] * n, "threshold": 0.9, "nodes": nodes, "edges": edges,
            "meta": {}}


def test_a_deep_chain_draws_the_16_nodes_of_largest_gain_and_says_of_how_many() -> None:
    fig = layer_map_figure(_map())
    matrix, bars = fig.axes[0], fig.axes[1]
    assert fig._suptitle.get_text() == "layer causal map: 16 of 40 causal nodes"
    texts = [t.get_text() for t in bars.texts]
    assert texts[:2] == [" 0.5  ×2", " 0.5  ×2.2 over 1"]  # into l0; l0 -> l2 over l1: 1.1 * 2
    last = f"output 0.5  ×{1.1 ** 9 * 0.5:.2g} over 9"  # l30 -> output over l31..l39
    assert texts[-1] == last and len(texts) == 17 and math.isclose(1.1 ** 9 * 0.5, 1.18, abs_tol=0.005)
    assert matrix.get_title() == "linear CKA, 16 of 40 layers"
    assert [t.get_text() for t in matrix.get_yticklabels()] == [f"{i}: l{i}" for i in range(0, 31, 2)]
    assert fig.get_size_inches()[1] < 10  # was 0.42 inch a node: 17.5 inches for 42


def test_a_chain_of_16_nodes_is_drawn_whole() -> None:
    fig = layer_map_figure(_map(16))
    assert fig._suptitle.get_text() == "layer causal map: 16 causal nodes"
    assert fig.axes[0].get_title() == "linear CKA" and len(fig.axes[0].get_yticklabels()) == 16


def test_a_matrix_of_more_than_32_layers_holds_the_ends_of_each_node() -> None:
    m = _map()
    blocks = [m["layers"][k:k + 10] for k in range(0, N, 10)]  # 40 layers merged into 4 nodes
    nodes = [m["nodes"][0], *({"id": f"{b[0]}..{b[-1]}", "layers": b} for b in blocks), m["nodes"][-1]]
    ids = [node["id"] for node in nodes]
    m.update(nodes=nodes, edges=[{"source": a, "target": b, "weight": 0.5, "gain": 1.0} for a, b in zip(ids, ids[1:])])
    fig = layer_map_figure(m)
    matrix = fig.axes[0]
    assert fig._suptitle.get_text() == "layer causal map: 4 causal nodes"
    assert matrix.get_title() == "linear CKA, 8 of 40 layers"
    assert [t.get_text() for t in matrix.get_yticklabels()] == [f"{i}: l{i}" for k in range(0, N, 10) for i in (k, k + 9)]
    boxes = [(p.get_x(), p.get_width()) for p in matrix.patches]
    assert boxes == [(-0.4 + 2 * k, 1.8) for k in range(4)]  # each node's two rows boxed (0.1 inside its cells)


def test_a_capped_chain_with_an_edge_missing_draws_it_undefined() -> None:
    m = _map()
    m["edges"] = [e for e in m["edges"] if e["target"] != "<output>"]  # a hand-made or trimmed export
    texts = [t.get_text() for t in layer_map_figure(m).axes[1].texts]
    assert texts[-1] == "output –  ×– over 9"  # l30 -> <output> over l31..l39: no s, no gain
