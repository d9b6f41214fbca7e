"""The layer causal map's TensorBoard card, drawn from ``LayerCausalMap.to_dict()``: one row per layer.

The card used to draw the CKA matrix beside a chain of circles, 660 to 750 pixels wide and up to 620 high, which a
TensorBoard image card (a box of about 400 x 215 pixels) showed at 0.35 to 0.61: 8-point labels 3 to 5 points high.
Here each layer is one row of the matrix and, beside it on the same row, one bar of its relative response
``s``, the gain written where a causal node begins: the chain's numbers without a second copy of the layer
names, about 400 x 260 to 500 x 310 pixels for 2 to 12 layers (580 x 310 for 12 of 20-character names).
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.textpath import text_to_path
from matplotlib.transforms import blended_transform_factory

from lightning_causal.causal.engine.layer_calls import calls_counted
from lightning_causal.reporting.figure_style import (
    MAGNITUDE,
    layer_labels,
    left_out_prefix,
    to_float,
    wrapped_at_separators,
)

__all__ = ["LAYER_MAP_KEY", "layer_map_figure"]

#: The key under the figure: what a bar, the ``×`` number and a white box are.
LAYER_MAP_KEY = ("bars: s = E‖Δh‖ / E‖h‖, the share of a layer's output the input interventions move; "
                 "×g: gain, s over s of the node above; white boxes: layers merged into one node (CKA >= {threshold:.2f})")

ROW = 0.16  # inches a layer, down and across the matrix: an 8-point label or a two-digit number and its gap
FONT = 8  # points: the labels, the values and the key (the smallest text of the other cards)
_CHAR = 0.067  # inches of an average 8-point DejaVu Sans character (names, numbers)
_KEY_CHAR = 0.078  # inches a character of the key's prose (wider letters, no line may reach the edge)
_KEY_LEFT = 0.1  # inches from the figure's edges to the note and key under the matrix
_LABEL_CHARS = 20  # a layer's name at most, after its shared prefix (the row's number before it): 12 rows fit a card
_BAR = 0.5  # inches of the longest bar, its value and gain after it
_NODE_SHADES = (MAGNITUDE, "0.72")  # the bars of consecutive causal nodes alternate: a node's layers read as a block


_MAX_CHAIN = 16  # causal nodes drawn (60 nodes of a deep flat model made a 32-inch figure)
_MAX_MATRIX = 32  # layers in the CKA matrix: beyond, the ends of each drawn node


def _capped_chain(layer_map: dict) -> dict:
    """``layer_map`` with at most :data:`_MAX_CHAIN` causal nodes: those whose incoming gain is farthest from 1
    (``|log gain|``: where the response grows or fades most; an undefined gain, then layers no intervention moves
    (``meta["unmoved"]``, named under the figure) last), in chain order, between
    ``<input>`` and ``<output>``; an edge over left-out nodes carries the target's ``s``, the product of the gains
    it spans and ``skipped``, their number. Unchanged when every causal node fits."""
    nodes, edges = layer_map["nodes"], layer_map["edges"]
    causal = [k for k, node in enumerate(nodes) if node["layers"]]
    if len(causal) <= _MAX_CHAIN:
        return layer_map
    into = {e["target"]: e for e in edges}
    unmoved = set((layer_map.get("meta") or {}).get("unmoved") or ())

    def change(k: int) -> float:
        if set(nodes[k]["layers"]) <= unmoved:  # the note under the figure names them: their gains are of noise
            return -2.0
        gain = to_float(into.get(nodes[k]["id"], {}).get("gain"))
        return abs(math.log(gain)) if math.isfinite(gain) and gain > 0 else (math.inf if gain == 0 else -1.0)

    kept = set(sorted(causal, key=lambda k: (-change(k), k))[:_MAX_CHAIN])
    keep = [k for k in range(len(nodes)) if k in kept or not nodes[k]["layers"]]
    chain = []
    for a, b in zip(keep, keep[1:]):
        gain = 1.0
        for k in range(a + 1, b + 1):  # the edges from node a to node b, through the left-out ones
            gain *= to_float(into.get(nodes[k]["id"], {}).get("gain"))
        edge = {**into.get(nodes[b]["id"], {"weight": math.nan}), "source": nodes[a]["id"], "target": nodes[b]["id"], "gain": gain}
        if b - a > 1:
            edge["skipped"] = b - a - 1
        chain.append(edge)
    return {**layer_map, "nodes": [nodes[k] for k in keep], "edges": chain}


def _left_out_note(meta: dict, width: int) -> list[str]:
    """The lines above the key: the leaf layers the default layers leave out, the layers no
    intervention moves (``meta["left_out"]``, ``meta["unmoved"]``), which the rows do not show, and the layers
    read at the last of their calls per pass (``meta["last_call"]``: a shared module's row is that call's);
    ``width`` characters a line."""
    lines = []
    if meta.get("left_out"):
        by_why: dict[str, list[str]] = {}  # the layers of one reason together: a mixture's experts share one
        for layer, why in meta["left_out"].items():
            by_why.setdefault(str(why), []).append(str(layer))
        lines.append("left out: " + "; ".join(f"{', '.join(layers)} ({why})" for why, layers in by_why.items()))
    if meta.get("unmoved"):
        lines.append("no intervention moves: " + ", ".join(meta["unmoved"]))
    if meta.get("last_call"):
        lines.append("read at the last of their calls per pass: "
                     + ", ".join(f"{layer} ({calls_counted(calls)})" for layer, calls in meta["last_call"].items()))
    return [wrapped for line in lines for wrapped in wrapped_at_separators(line, width)]


def _fitted(line: str, inches: float, chars: int) -> list[str]:
    """``line`` wrapped at its spaces into lines at most ``inches`` wide at :data:`FONT` points, measured (module
    paths, ``model.user_emb``, are wider than the key's prose a character), from ``chars`` characters a line down; a
    module's path longer than a line broken after a dot, an underscore, a slash or a hyphen, as titles are
    (:func:`~lightning_causal.reporting.figure_style.wrapped_at_separators`), not mid-word."""
    prop = FontProperties(size=FONT)
    for n in range(max(chars, 10), 9, -1):
        wrapped = wrapped_at_separators(line, n)
        # 4% over the outline's width: the Agg renderer's hinting draws 8-point text up to 3% wider
        if all(1.04 * text_to_path.get_text_width_height_descent(w, prop, ismath=False)[0] / 72 <= inches for w in wrapped):
            return wrapped
    return wrapped_at_separators(line, 9)


def _value(v: float) -> str:
    """``v`` to 2 significant digits, ``–`` where it is undefined (NaN: 0/0, or missing from the export)."""
    return f"{v:.2g}" if math.isfinite(v) else "–"


def _gain_text(edge: dict) -> str:
    text = "×" + _value(to_float(edge.get("gain")))  # 0/0 where nothing reaches the source (a layer no intervention moves)
    if edge.get("skipped"):  # a capped chain: the gain over the nodes left out between
        text += f" over {edge['skipped']}"
    return text


def _rows(layer_map: dict) -> tuple[list[int], list[str], dict, int, int]:
    """The numbers among all layers of the layers drawn (all, or the ends of each drawn node of a capped chain),
    their labels ``i: name``, the capped map, and the numbers of drawn and of all causal nodes."""
    all_layers = list(layer_map["layers"])
    causal = sum(1 for node in layer_map["nodes"] if node["layers"])
    capped = _capped_chain(layer_map)
    drawn = sum(1 for node in capped["nodes"] if node["layers"])
    number = {layer: i for i, layer in enumerate(all_layers)}
    numbers = [number[layer] for node in capped["nodes"] for layer in dict.fromkeys(node["layers"][:1] + node["layers"][-1:])]
    numbers = list(range(len(all_layers))) if drawn == causal and len(all_layers) <= _MAX_MATRIX else numbers
    names = layer_labels(all_layers, _LABEL_CHARS)
    return numbers, [f"{i}: {names[i]}" for i in numbers], capped, drawn, causal


def _bar_texts(layer_map: dict, layers: list[str], drawn_map: dict) -> tuple[list[float], list[str], list[str]]:
    """Each row's relative response ``s``, the text after its bar (``s``, and the gain into a node at its first
    layer) and the shade of its node."""
    response = dict(zip(layer_map["layers"], (to_float(v) for v in layer_map.get("response", []))))
    s = [response.get(layer, math.nan) for layer in layers]
    into = {e["target"]: e for e in drawn_map["edges"]}
    shade, first = {}, {}
    for k, node in enumerate(n for n in drawn_map["nodes"] if n["layers"]):
        for layer in node["layers"]:
            shade.setdefault(layer, _NODE_SHADES[k % 2])
        first[node["layers"][0]] = into.get(node["id"], {})
    texts = [f" {_value(v)}" + (f"  {_gain_text(first[layer])}" if layer in first else "") for layer, v in zip(layers, s)]
    return s, texts, [shade.get(layer, MAGNITUDE) for layer in layers]


def _bars(ax: Any, s: list[float], texts: list[str], shades: list[str], out: str | None, width: float) -> None:
    """Each row's ``s`` as a bar, at most :data:`_BAR` inches of the ``width`` inches, its text after it; the
    output's under the last row."""
    s = [v if math.isfinite(v) else 0.0 for v in s]
    ax.barh(range(len(s)), s, height=0.7, color=shades)
    for i, (v, text) in enumerate(zip(s, texts)):
        ax.text(max(v, 0.0), i, text, fontsize=FONT, va="center", ha="left")
    if out:  # under the last layer, on the row of the matrix's column numbers
        ax.text(0.0, len(s) + 0.3, out, fontsize=FONT, va="center", ha="left", clip_on=False)
    ax.set_xlim(0.0, max(s + [1e-12]) * width / _BAR)
    ax.set_ylim(len(s) - 0.5, -0.5)
    ax.set_yticks([])
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


def _output_text(drawn_map: dict) -> str | None:
    """``output <s> ×<gain>`` from the edge into ``<output>``; ``None`` without one."""
    last = drawn_map["nodes"][-1] if drawn_map["nodes"] else None
    out = next((e for e in drawn_map["edges"] if e["target"] == last["id"]), None) if last and not last["layers"] else None
    return None if out is None else f"output {_value(to_float(out.get('weight')))}  {_gain_text(out)}"


def layer_map_figure(layer_map: dict, title: str | None = None) -> Figure:
    """The layer causal map, one row per layer: left, the CKA matrix of the layers' response profiles (rows
    ``i: name``: :func:`~lightning_causal.reporting.figure_style.layer_labels`, the names without their shared
    prefix, at most 20 characters; columns by number; the layers merged into one causal node boxed in white);
    right, on the same rows, each layer's relative response ``s = E‖Δh‖ / E‖h‖`` as a bar with its value, and
    where a causal node begins the gain ``×g`` (its ``s`` over the ``s`` of the node above); the bars of
    consecutive nodes alternate in shade; the output's ``s`` and gain on the row under the last layer. Under it
    all: the leaf layers the default layers left out, the layers no intervention moves (``meta["left_out"]``,
    ``meta["unmoved"]``) and the layers read at their last call of several per pass (``meta["last_call"]``: a shared
    encoder's row is its last call's), then the key (:data:`LAYER_MAP_KEY`). All text is 8 points or more.

    Sized for a TensorBoard image card (a box of about 400 x 215 pixels): 0.16 inch a layer, about 5 x 3 inches
    for 12 layers with short names, 5.9 x 3.1 with 20-character names (shown at 0.66 or more); the columns' numbers
    are written upright where one drawn has three digits or more (a layer 100 or later of a model of more than 100
    layers: three digits are wider than a column). A chain of
    more than 16 causal nodes draws those whose incoming gain is farthest from 1, and a matrix of more than 32
    layers the first and last layer of each drawn node, numbered as among all (a gain over nodes not drawn
    reads ``×g over k``); the title then says how many of how many. The JSON report holds them all.

    Args:
        layer_map: ``LayerCausalMap.to_dict()``.
        title: the figure's title; default ``"layer causal map: <k> causal nodes"``, ``"layer causal map of image: ..."``
            where the rows' labels leave out the path ``image.`` every layer shares (:func:`~.figure_style.left_out_prefix`).

    Examples:
        >>> fig = layer_map_figure({"layers": ["a", "b"], "cka": [[1.0, 0.95], [0.95, 1.0]], "response": [0.5, 0.4],
        ...     "threshold": 0.9, "nodes": [{"id": "<input>", "layers": []}, {"id": "a..b", "layers": ["a", "b"]},
        ...     {"id": "<output>", "layers": []}], "edges": [{"source": "<input>", "target": "a..b", "weight": 0.5, "gain": 1.0},
        ...     {"source": "a..b", "target": "<output>", "weight": 0.1, "gain": 0.25}]})
        >>> [t.get_text() for t in fig.axes[1].texts]
        [' 0.5  ×1', ' 0.4', 'output 0.1  ×0.25']
    """
    if not isinstance(layer_map, dict) or not {"layers", "cka", "nodes", "edges"} <= layer_map.keys():
        raise ValueError(f"Expected argument `layer_map` to be LayerCausalMap.to_dict() (keys layers, cka, nodes, edges) "
                         f"but got {type(layer_map).__name__}"
                         + (f" with keys {sorted(layer_map)}" if isinstance(layer_map, dict) else ""))
    numbers, rows, drawn_map, drawn, causal = _rows(layer_map)  # a layer's number among all: a capped matrix skips some
    all_layers = list(layer_map["layers"])
    layers = [all_layers[i] for i in numbers]
    n = len(layers)
    side = max(1.3, ROW * n)  # the matrix's height and width
    left = 0.15 + _CHAR * max([len(r) for r in rows] + [4])
    s, texts, shades = _bar_texts(layer_map, layers, drawn_map)
    out = _output_text(drawn_map)
    bars_width = max(_BAR + 0.15 + _CHAR * max(len(t) for t in texts), 0.15 + _CHAR * len(out or ""))  # out: no bar
    width = left + side + 0.6 + bars_width  # the labels, the matrix, its colour bar, the bars
    threshold = to_float(layer_map.get("threshold"))
    lines = _left_out_note(layer_map.get("meta") or {}, 10**6) + [LAYER_MAP_KEY.format(threshold=threshold)]
    note = [fitted for line in lines for fitted in _fitted(line, width - 2 * _KEY_LEFT, int(width / _KEY_CHAR))]
    note_height = 0.15 * len(note) + 0.05
    digits = max(len(str(i)) for i in numbers)  # the column numbers: 3 digits (a layer 100 or later) are wider than a row
    upright = digits > 2  # then turned upright, each in its own column, the matrix lower by their length
    height = 0.3 + side + 0.35 + note_height + (_CHAR * digits - 0.11 if upright else 0.0)
    fig = Figure(figsize=(width, height), layout="constrained")
    # constrained layout gives the labels and the colour bar their room, then the ratios share the rest
    grid = fig.add_gridspec(2, 2, width_ratios=[side, bars_width], height_ratios=[side + 0.35, note_height])
    ax, bars = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    cka = layer_map["cka"]
    im = ax.imshow([[to_float(cka[i][j]) for j in numbers] for i in numbers], vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(n), [str(i) for i in numbers], fontsize=FONT, rotation=90 if upright else 0)
    ax.set_yticks(range(n), rows, fontsize=FONT)
    ax.set_xlabel("layer", fontsize=FONT, labelpad=1)
    index = {layer: i for i, layer in enumerate(layers)}
    for node in drawn_map["nodes"]:
        if len(node["layers"]) > 1:
            a, b = index[node["layers"][0]], index[node["layers"][-1]]
            # inside the node's cells: a box of every layer (a BERT's two blocks merged) is not hidden under the frame
            ax.add_patch(Rectangle((a - 0.4, a - 0.4), b - a + 0.8, b - a + 0.8, fill=False, ec="white", lw=2))
    of = f", {n} of {len(all_layers)} layers" if n < len(all_layers) else ""
    ax.set_title(f"linear CKA{of}", fontsize=FONT + 1)
    fig.colorbar(im, ax=ax, fraction=0.08, pad=0.03, ticks=[0.0, 0.5, 1.0]).ax.tick_params(labelsize=FONT)
    _bars(bars, s, texts, shades, out, bars_width)
    bars.set_title("response s", fontsize=FONT + 1)
    key = fig.add_subplot(grid[1, :])
    key.axis("off")
    # from the figure's left edge, not the key's (under the matrix, after the labels' room): the lines are wrapped to it
    key.text(_KEY_LEFT / width, 1.0, "\n".join(note), fontsize=FONT, ha="left", va="top", color="0.25",
             transform=blended_transform_factory(fig.transFigure, key.transAxes))
    heading = f"{drawn} of {causal} causal nodes" if drawn < causal else f"{causal} causal nodes"
    within = left_out_prefix(all_layers, whole=(layer_map.get("meta") or {}).get("whole_model"))  # image.fc, not text.fc
    fig.suptitle(title or f"layer causal map{f' of {within}' if within else ''}: {heading}", fontsize=FONT + 1)
    return fig
