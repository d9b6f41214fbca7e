"""Figures of the structural explanations, drawn from their dict exports as plain
matplotlib ``Figure`` objects:
:func:`graph_figure` for ``CausalGraph.to_dict()`` and :func:`layer_map_figure` for
``LayerCausalMap.to_dict()``."""

from __future__ import annotations

import math
import textwrap
from typing import Any

from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Rectangle
from matplotlib.textpath import text_to_path

from lightning_causal.causal.engine.units import unit_kind

__all__ = ["column_labels", "graph_figure", "layer_labels", "layer_map_figure", "node_label", "node_sizes", "path_tail", "strip_common_prefix"]

_POS, _NEG = "tab:red", "tab:blue"
_NODE_POS, _NODE_NEG = "#f4c7c3", "#c6dbef"  # a unit's own effect: light red / light blue


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _columns(graph: dict) -> list[tuple[str, list[dict]]]:
    layers = list(graph.get("layers", [])) + ["output"]
    nodes = graph.get("nodes", [])
    return [(layer, [n for n in nodes if n["layer"] == layer]) for layer in layers]


def strip_common_prefix(names: list[str]) -> list[str]:
    """The names without the dotted prefix they all share (two or more names; each keeps its last part).

    Examples:
        >>> strip_common_prefix(["model.vit.vit.layers.0.attention", "model.vit.vit.layers.1.mlp", "model.vit.classifier"])
        ['vit.layers.0.attention', 'vit.layers.1.mlp', 'classifier']
        >>> strip_common_prefix(["model.fc"])
        ['model.fc']
    """
    parts = [n.split(".") for n in names]
    common = 0
    if len(parts) >= 2:
        while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
            common += 1
    return [".".join(p[common:]) for p in parts]


def _numbers_named(layers: list[str], stripped: list[str]) -> list[str]:
    """Stripped names where a bare number (``1`` of ``net.1``, easily read as a unit) keeps the
    part before it (``net.1``), or, a top-level child of a ``Sequential``, says it is a layer."""
    if not any(t.isdigit() for t in stripped):
        return stripped
    out = [".".join(name.split(".")[-t.count(".") - 2:]) for name, t in zip(layers, stripped)]
    return [f"layer {t}" if t.isdigit() else t for t in out]


def column_labels(layers: list[str]) -> list[str]:
    """Column titles: the layer names without the dotted prefix they all share (two or more
    layers, :func:`strip_common_prefix`), long ones broken at dots, so that
    ``model.bert.encoder.layer.0.attention.self`` beside ``...layer.1.intermediate`` reads
    ``0.attention.self`` and ``1.intermediate``.

    Examples:
        >>> column_labels(["model.enc.layer.0.attention.self", "model.enc.layer.1.intermediate", "output"])
        ['0.attention.self', '1.intermediate', 'output']
        >>> column_labels(["conv1", "conv2"]), column_labels(["model.a_very_long_block_name.sublayer"])
        (['conv1', 'conv2'], ['model\\n.a_very_long_block_name\\n.sublayer'])
        >>> column_labels(["net.1", "net.3", "output"]), column_labels(["0", "2"])
        (['net.1', 'net.3', 'output'], ['layer 0', 'layer 2'])
    """
    named = [n for n in layers if n != "output"]
    stripped = iter(_numbers_named(named, strip_common_prefix(named)))
    out = []
    for name in layers:
        label = name if name == "output" else next(stripped)
        lines, line = [], ""
        for k, piece in enumerate(label.split(".")):
            piece = piece if k == 0 else "." + piece
            if line and len(line) + len(piece) > 16:
                lines.append(line)
                line = piece
            else:
                line += piece
        out.append("\n".join([*lines, line]))
    return out


_MAX_COLUMN = 16  # nodes drawn per column: a taller figure is shrunk past reading in a TensorBoard card


def _capped(columns: list[tuple[str, list[dict]]], edges: list[dict]) -> tuple[list[tuple[str, list[dict]]], dict[str, int]]:
    """At most :data:`_MAX_COLUMN` nodes per column, and each capped column's node count: a layer's first ones
    (the audit lists them strongest first), the classes of the output column with the strongest edges into them
    (a 1000-class model explains as many classes as its probe predicts), kept in their order."""
    into: dict[str, float] = {}
    for e, w in zip(edges, _edge_strengths(edges)):
        into[e["target"]] = into.get(e["target"], 0.0) + abs(w)
    out, totals = [], {}
    for layer, nodes in columns:
        if len(nodes) > _MAX_COLUMN:
            totals[layer] = len(nodes)
            if layer == "output":
                keep = {id(n) for n in sorted(nodes, key=lambda n: -into.get(n["id"], 0.0))[:_MAX_COLUMN]}  # stable: ties in order
                nodes = [n for n in nodes if id(n) in keep]
            else:
                nodes = nodes[:_MAX_COLUMN]
        out.append((layer, nodes))
    return out, totals


def _node_strength(node: dict) -> float:
    for key in ("effect", "importance", "samples"):
        v = _f(node.get(key))
        if math.isfinite(v):
            return v
    return 1.0


_NODE_EDGE = 1.0  # points: the node circle's edge line (half of it inside the circle)


def node_label(unit: str) -> str:
    """A unit id as its node writes it: ids of up to 5 characters on one line, longer ones (a flattened position of
    a wide layer, 123456) broken into lines of at most 4 characters, as even as can be (on one line at 4 points
    a 6-digit id was wider than the pitch of a column's nodes).

    Examples:
        >>> node_label("9999"), node_label("123456"), node_label("1234567"), node_label("123456789")
        ('9999', '123\\n456', '1234\\n567', '123\\n456\\n789')
    """
    if len(unit) <= 5:
        return unit
    lines = -(-len(unit) // 4)
    q, r = divmod(len(unit), lines)  # the first r lines one character longer than the others
    ends = [k * q + min(k, r) for k in range(lines + 1)]
    return "\n".join(unit[a:b] for a, b in zip(ends, ends[1:]))


def _label_across(label: str, size: float) -> float:
    """Points: the diagonal of ``label``'s text box at ``size`` points plus the circle's edge line (one line is
    ``size`` high, n lines ``1.2 n size``, as matplotlib lays them out)."""
    font = FontProperties(size=size)
    lines = label.split("\n")
    width = max(text_to_path.get_text_width_height_descent(line, font, ismath=False)[0] for line in lines)
    height = size if len(lines) == 1 else 1.2 * len(lines) * size
    return math.hypot(width, height) + 2 * _NODE_EDGE


def node_sizes(units: list[str]) -> tuple[float, float, float]:
    """The unit-id font size of a column whose nodes are labelled ``units``, and its nodes' smallest and largest marker
    areas (points², matplotlib's ``scatter(s=)``): 7 points for ids of up to 2 digits, 6 for 3, 5 for 4, 4 for more (a
    wide layer's ids 100–9999 were written at 7 points across the circles), ids of 6 or more characters broken into
    lines (:func:`node_label`) and, where even so they do not fit (9 digits or more), written smaller; the smallest
    circle holds the longest label's text box (width and height) with its edge line, the largest is 100 points² more
    (at least 230: 15 points across), at most 17 points across: under the 18-point pitch of a column's nodes, so
    that neighbours never touch.

    Args:
        units: the column's node labels.

    Examples:
        >>> node_sizes(["3", "12"])[0], node_sizes(["123"])[0], node_sizes(["9999", "5"])[0], node_sizes(["123456"])[0]
        (7, 6, 5, 4)
    """
    labels = [node_label(u) for u in units or ["0"]]
    longest = max(len(u) for u in units or ["0"])
    size = {1: 7, 2: 7, 3: 6, 4: 5}.get(longest, 4)
    across = max(_label_across(label, size) for label in labels)  # the text box's diagonal: its corners inside the circle
    while size > 1 and across > _LARGEST - 1.0:  # room to grow
        size -= 1
        across = max(_label_across(label, size) for label in labels)
    lo = max(30.0, across**2)
    return size, lo, max(lo, min(max(230.0, lo + 100.0), _LARGEST**2))


def _draw_nodes(ax: Any, columns: list[tuple[str, list[dict]]], height: int,
                kinds: dict[str, str] | None = None, class_names: list[str] | None = None) -> dict[str, tuple[float, float]]:
    pos: dict[str, tuple[float, float]] = {}
    kinds = kinds or {}
    labels = [label + (f"\n({kinds[layer]})" if layer in kinds else "")
              for label, (layer, _) in zip(column_labels([layer for layer, _ in columns]), columns)]
    for x, (layer, nodes) in enumerate(columns):
        top = max([abs(_node_strength(n)) for n in nodes] + [1e-12])
        fontsize, lo, hi = node_sizes([str(n["unit"]) for n in nodes])
        for k, n in enumerate(nodes):
            y = (len(nodes) - 1) / 2.0 - k
            pos[n["id"]] = (x, y)
            v = _node_strength(n)
            face = "0.65" if layer == "output" else (_NODE_POS if v >= 0 else _NODE_NEG)
            ax.scatter([x], [y], s=lo + (hi - lo) * abs(v) / top, color=face, edgecolors="0.2", linewidths=_NODE_EDGE,
                       zorder=3)  # at most 17 pt across (_LARGEST): the pitch is 18
            ax.annotate(node_label(str(n["unit"])), (x, y), fontsize=fontsize, ha="center", va="center", zorder=4)
            if layer == "output" and class_names and 0 <= int(n["unit"]) < len(class_names):  # the class, beside its node
                ax.text(x + 0.14, y, _short(str(class_names[int(n["unit"])])), fontsize=7, ha="left", va="center", zorder=4)
        # above the axes, in points: the title (its pad, graph_figure) sits above them whatever the data scale
        ax.annotate(labels[x], (x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8, fontweight="bold", annotation_clip=False)
        if not nodes:  # a layer none of whose units entered the graph: say so, not an unexplained empty column
            ax.text(x, 0.0, "no unit\nkept", ha="center", va="center", fontsize=7, color="0.45", style="italic")
    return pos


def _edge_strengths(edges: list[dict]) -> list[float]:
    """Each edge's drawn strength in ``[-1, 1]``: its path effect relative to the largest ``|effect|``
    of the graph (every path effect is a change of the same explained output, so widths compare
    across layers), or its ``weight`` (relative to the strongest edge into its layer) where an edge
    has no finite ``effect``."""
    effects = [_f(e.get("effect")) for e in edges]
    if edges and all(math.isfinite(v) for v in effects):
        top = max(abs(v) for v in effects)
        return [v / top if top > 0 else 0.0 for v in effects]
    return [w if math.isfinite(w := _f(e.get("weight"))) else 0.0 for e in edges]


def _draw_edges(ax: Any, edges: list[dict], pos: dict[str, tuple[float, float]]) -> None:
    """Weakest first, so that strong edges lie on top; edges that skip a column are drawn as arcs."""
    for e, w in sorted(zip(edges, _edge_strengths(edges)), key=lambda ew: abs(ew[1])):
        if e["source"] not in pos or e["target"] not in pos:
            continue
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        style = {"color": _POS if w >= 0 else _NEG, "lw": 0.4 + 3.2 * min(abs(w), 1.0), "alpha": 0.3 + 0.6 * min(abs(w), 1.0)}
        if x1 - x0 > 1:
            ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), connectionstyle="arc3,rad=-0.25", arrowstyle="-",
                                         zorder=2, **style))
        else:
            ax.plot([x0, x1], [y0, y1], zorder=2, **style)


_NAME_CHARS = 18  # a class name beside an output node: at most this many characters


def _short(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…"


_LABEL_LINE = 10.5  # points per line of a column title (8-point bold text and its leading)
_MIN_WIDTH = 4.45  # inches: the legend's three entries and the title fit (a graph of one layer has two columns)
_PITCH = 0.25  # inches between the nodes of a column
_LARGEST = _PITCH * 72 - 1.0  # points: the largest circle's diameter, 1 point under the pitch of a column's nodes


def _legend_handles() -> list[Line2D]:
    """The graph's key in two rows (the legend's three columns fill top to bottom): the edges, then the nodes."""
    def node(face: str, label: str) -> Line2D:
        return Line2D([], [], ls="", marker="o", markersize=7, markerfacecolor=face, markeredgecolor="0.2", label=label)

    return [Line2D([], [], color=_POS, lw=2.5, label="positive path effect"), node(_NODE_POS, "unit effect > 0"),
            Line2D([], [], color=_NEG, lw=2.5, label="negative path effect"), node(_NODE_NEG, "unit effect < 0"),
            Line2D([], [], color="0.4", lw=0.7, label="weak (width ∝ |effect|)"), node("white", "node area ∝ |effect|")]


def graph_figure(graph: dict, title: str | None = None) -> Figure:
    """The causal graph as layered columns: one column per layer (strongest unit on top), node
    area ∝ |mean effect| (relative to the layer's strongest node; output nodes ∝ samples; the smallest circle holds
    the column's longest unit id, ids of 3 or more digits in a smaller font, of 6 or more broken into lines, no circle
    wider than the pitch of a column: :func:`node_sizes`), node
    colour = sign of the unit effect; edge width and opacity ∝ |path effect| (relative to the
    strongest edge of the graph: every path effect is a change of the explained output, so an edge
    into a hidden unit that moves the output by 1e-5 is drawn thin even when it is the strongest
    into its layer, ``weight`` 1; graphs without ``effect`` on the edges: ∝ |weight|), red =
    positive (the path supports the explained output), blue = negative; edges that skip a column (paths around the layers in between) are
    arcs; a layer with no unit in the graph reads "no unit kept". The legend's two rows say so for the edges and
    the nodes. The title gives the numbers of
    nodes and edges and the faithfulness. With ``meta["class_names"]`` (``CausalGraphAudit(class_names=...)``)
    each output node's class name is written beside it (at most 18 characters). A column draws at most 16 nodes
    (a TensorBoard card shrinks a taller figure past reading: a 1000-class model explains every class its probe
    predicts): a layer's first ones, strongest first as the audit lists them, and the classes with the strongest
    edges into them, in their order; its title then says how many of how many (``output (16 of 36)``), the figure's
    title gives the graph's own numbers, and the ``nodes`` and ``edges`` tables hold them all.

    Examples:
        >>> fig = graph_figure({"layers": ["fc"], "nodes": [{"id": "fc:0", "layer": "fc", "unit": 0, "effect": 1.0},
        ...     {"id": "output:1", "layer": "output", "unit": 1, "samples": 3}],
        ...     "edges": [{"source": "fc:0", "target": "output:1", "weight": -1.0}], "meta": {}})
        >>> len(fig.axes)
        1
    """
    columns, totals = _capped(_columns(graph), graph.get("edges", []))
    height = max([len(ns) for _, ns in columns] + [1])
    layouts = graph.get("meta", {}).get("unit_layouts") or {}
    kinds = {layer: f"{kind}s" for layer, o in layouts.items() if (kind := unit_kind(o.get("unit_dim"), o.get("num_heads")))}
    for layer, nodes in columns:  # a capped column says how many of its nodes it draws
        if layer in totals:
            kinds[layer] = "; ".join(([kinds[layer]] if layer in kinds else []) + [f"{len(nodes)} of {totals[layer]}"])
    lines = max(label.count("\n") + 1 + (layer in kinds) for label, (layer, _) in zip(column_labels([c for c, _ in columns]), columns))
    extra = max(0, lines - 2)  # column titles of more than two lines: room above the nodes
    names = graph.get("meta", {}).get("class_names") or None
    margin = 0.14 + 0.06 * max(len(_short(str(c))) for c in names) if names else 0.0  # data units right of the output column
    width = max(1.0 + 1.15 * (len(columns) + margin), _MIN_WIDTH)  # ~5 inches (a card's width) for 3 columns; one layer: room for the legend
    # 0.25 inch per node of the tallest column (was 0.45: eight units per layer made a 445 x 510 figure, which a
    # TensorBoard card, a box of about 400 x 215 pixels, showed at 0.42, its labels unreadable; 0.28 and 1.5 inches
    # for the title and legend: 489 x 374, at 0.57; now 325 high, at 0.66, the largest markers 5 pixels apart)
    fig = Figure(figsize=(width, 1.25 + _PITCH * height + 0.15 * extra))  # 1.25: the title, the legend's two rows
    ax = fig.subplots()
    pos = _draw_nodes(ax, columns, height, kinds, names)
    _draw_edges(ax, graph.get("edges", []), pos)
    faith = _f(graph.get("meta", {}).get("faithfulness"))
    hidden = sum(totals.get(layer, len(ns)) for layer, ns in columns if layer != "output")  # drawn or not
    default = (f"causal graph: {hidden} nodes, {len(graph.get('edges', []))} edges"
               + (f", faithfulness {faith:.2f}" if math.isfinite(faith) else ""))
    ax.set_title(title or default, fontsize=9, pad=6 + _LABEL_LINE * lines)  # above the column titles
    ax.legend(handles=_legend_handles(), loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=7, frameon=False)
    ax.set_xlim(-0.6, len(columns) - 0.4 + margin)
    ax.set_ylim(-(height - 1) / 2.0 - 1.9, (height - 1) / 2.0 + 1.2)  # room for the arcs above the top node, the legend below
    ax.axis("off")
    fig.tight_layout()
    return fig


def path_tail(name: str, limit: int = 28) -> str:
    """A module path cut at its start to at most ``limit`` characters, keeping whole trailing parts
    where it can (the end of a path names the module).

    Examples:
        >>> path_tail("vit.layers.0.attention.q_proj"), path_tail("fc1")
        ('…layers.0.attention.q_proj', 'fc1')
    """
    if len(name) <= limit:
        return name
    tail = ""
    for part in reversed(name.split(".")):
        piece = part if not tail else f"{part}.{tail}"
        if len(piece) + 1 > limit:
            break
        tail = piece
    return "…" + (tail or name[len(name) - limit + 1:])


def layer_labels(layers: list[str], limit: int = 28) -> list[str]:
    """Short labels of module paths: without their shared prefix (:func:`strip_common_prefix`), long
    ones cut at the start (:func:`path_tail`), or, where that makes two alike (paths that differ
    before a long shared end), cut in the middle.

    A bare number keeps the part before it (``layer.0``, not ``0``).

    Examples:
        >>> layer_labels(["m.blocks.0.residual_attention_projection", "m.blocks.1.residual_attention_projection"], 20)
        ['0.residua…projection', '1.residua…projection']
        >>> layer_labels(["model.bert.encoder.layer.0", "model.bert.encoder.layer.1"])
        ['layer.0', 'layer.1']
    """
    stripped = _numbers_named(layers, strip_common_prefix(layers))
    tails = [path_tail(t, limit) for t in stripped]
    if len(set(tails)) == len(tails):
        return tails
    head = (limit - 1) // 2
    return [t if len(t) <= limit else t[:head] + "…" + t[len(t) - (limit - 1 - head):] for t in stripped]


def _node_label(node: dict, index: dict[str, int], names: list[str]) -> str:
    """``"i: name"`` for one layer, ``"i–j: first"`` / ``"to last"`` for merged layers; the
    numbers are the rows of the CKA matrix."""
    members = node["layers"]
    if not members:
        return str(node["id"])
    a, b = index[members[0]], index[members[-1]]
    return f"{a}: {names[a]}" if a == b else f"{a}–{b}: {names[a]}\nto {names[b]}"


def layer_map_figure(layer_map: dict, title: str | None = None) -> Figure:
    """Left: the CKA matrix of the layers' response profiles with the merged causal nodes boxed,
    rows labelled ``i: name`` as the chain's nodes are (:func:`layer_labels`: the names without their shared prefix,
    at most 28 characters), columns by number. Right: the chain of causal nodes from top to bottom, each
    labelled with its layer numbers and names; node area ∝ the relative response reaching it, edges
    labelled with that response ``s`` and the gain. Under the matrix, where there are any: the leaf
    layers the default layers left out and the layers no intervention moves (``meta["left_out"]``,
    ``meta["unmoved"]``), then the key of the chain (:data:`CHAIN_KEY`: what ``s``, the gain and a node's
    size are). The canvas grows with the layers and nodes, up to a cap (a deep flat model of 62 layers made a
    16 x 32-inch figure): the chain draws at most 16 causal nodes, those whose incoming gain is farthest from 1
    (layers no intervention moves last), an edge over left-out nodes labelled with the product of their gains and
    "over k nodes not drawn"; a capped chain's matrix, or one of more than 32 layers, holds the first and last layer
    of each drawn node, numbered as among all; both titles then say how many of how many ("16 of 40 causal
    nodes", "16 of 40 layers"). The JSON report holds them all.

    Examples:
        >>> fig = layer_map_figure({"layers": ["a", "b"], "cka": [[1.0, 0.95], [0.95, 1.0]], "response": [0.5, 0.4],
        ...     "threshold": 0.9, "nodes": [{"id": "<input>", "layers": []}, {"id": "a..b", "layers": ["a", "b"]},
        ...     {"id": "<output>", "layers": []}], "edges": [{"source": "<input>", "target": "a..b", "weight": 0.5, "gain": 1.0},
        ...     {"source": "a..b", "target": "<output>", "weight": 0.1, "gain": 0.25}]})
        >>> len(fig.axes), fig.axes[1].texts[1].get_text()
        (4, '0–1: a\\nto b')
    """
    all_layers = list(layer_map["layers"])
    causal = sum(1 for node in layer_map["nodes"] if node["layers"])
    layer_map = _capped_chain(layer_map)
    drawn = sum(1 for node in layer_map["nodes"] if node["layers"])
    layers = [layer for node in layer_map["nodes"] for layer in dict.fromkeys(node["layers"][:1] + node["layers"][-1:])]
    layers = all_layers if drawn == causal and len(all_layers) <= _MAX_MATRIX else layers
    names_all = layer_labels(all_layers)
    index_all = {name: i for i, name in enumerate(all_layers)}
    index = {name: i for i, name in enumerate(layers)}  # the matrix's rows
    names = [names_all[index_all[layer]] for layer in layers]
    n, m = len(layers), len(layer_map["nodes"])
    numbers = [index_all[layer] for layer in layers]  # a layer's number among all: a capped matrix skips some
    rows = [f"{i}: {name}" for i, name in zip(numbers, names)]  # "row: layer", as the chain's node labels read
    side = max(1.8, 0.17 * n)  # the CKA matrix: one 8-point row per layer
    labels = [_node_label(node, index_all, names_all) for node in layer_map["nodes"]]
    chain = 2.4 + 0.07 * max(len(line) for label in labels for line in label.split("\n"))  # edge texts | node | labels
    left = 0.4 + 0.067 * max(len(r) for r in rows)
    step = 0.55 if any("\n" in label for label in labels) else 0.42  # room for a node's label and an edge's text
    width = int((left + side + 0.9) / 0.067)
    note = _left_out_note(layer_map.get("meta") or {}, width) + textwrap.wrap(CHAIN_KEY, width)
    height = max(side + 1.0 + 0.15 * len(note), step * m + 0.7)  # the note's 8-point lines below the matrix
    fig = Figure(figsize=(left + side + 0.9 + chain, height), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=[left + side + 0.9, chain], height_ratios=[side + 1.0, height - side - 0.99])
    ax, ax2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[:, 1])  # the matrix (and its colour bar) at the top
    cka = layer_map["cka"]
    im = ax.imshow([[_f(cka[i][j]) for j in numbers] for i in numbers], vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n))
    ax.set_xticklabels([str(i) for i in numbers], fontsize=7 if n < 20 else 6)
    ax.set_yticks(range(n))
    ax.set_yticklabels(rows, fontsize=8)
    ax.set_xlabel("layer", fontsize=8)
    for node in layer_map["nodes"]:
        if node["layers"]:
            a, b = index[node["layers"][0]], index[node["layers"][-1]]
            ax.add_patch(Rectangle((a - 0.5, a - 0.5), b - a + 1, b - a + 1, fill=False, ec="white", lw=2))
    of = f", {n} of {len(all_layers)} layers" if n < len(all_layers) else ""  # a capped matrix: each drawn node's ends
    ax.set_title(f"linear CKA (merge >= {_f(layer_map.get('threshold')):.2f}{of})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=8)
    _chain(ax2, layer_map, labels)
    if note:
        ax3 = fig.add_subplot(grid[1, 0])
        ax3.axis("off")
        ax3.text(0.0, 1.0, "\n".join(note), fontsize=8, ha="left", va="top", transform=ax3.transAxes, color="0.25")
    heading = f"{drawn} of {causal} causal nodes" if drawn < causal else f"{causal} causal nodes"
    ax2.set_title(title or f"layer causal map: {heading}", fontsize=9)
    return fig


CHAIN_KEY = ("edges: s = E‖Δh‖ / E‖h‖, the share of the node's output that the input interventions move "
             "(node area ∝ s); gain = s / s of the node above")

_MAX_CHAIN = 16  # causal nodes drawn in the chain (0.42 to 0.55 inch each: 60 nodes made a 32-inch figure)
_MAX_MATRIX = 32  # layers in the CKA matrix (0.17 inch each)


def _capped_chain(layer_map: dict) -> dict:
    """``layer_map`` with at most :data:`_MAX_CHAIN` causal nodes: those whose incoming gain is farthest from 1
    (``|log gain|``: where the response grows or fades most; an undefined gain, then layers no intervention moves
    (``meta["unmoved"]``, named under the matrix) last), in chain order, between
    ``<input>`` and ``<output>``; an edge over left-out nodes carries the target's ``s``, the product of the gains
    it spans and ``skipped``, their number. Unchanged when every causal node fits."""
    nodes, edges = layer_map["nodes"], layer_map["edges"]
    causal = [k for k, node in enumerate(nodes) if node["layers"]]
    if len(causal) <= _MAX_CHAIN:
        return layer_map
    into = {e["target"]: e for e in edges}
    unmoved = set((layer_map.get("meta") or {}).get("unmoved") or ())

    def change(k: int) -> float:
        if set(nodes[k]["layers"]) <= unmoved:  # the note under the matrix names them: their gains are of noise
            return -2.0
        gain = _f(into.get(nodes[k]["id"], {}).get("gain"))
        return abs(math.log(gain)) if math.isfinite(gain) and gain > 0 else (math.inf if gain == 0 else -1.0)

    kept = set(sorted(causal, key=lambda k: (-change(k), k))[:_MAX_CHAIN])
    keep = [k for k in range(len(nodes)) if k in kept or not nodes[k]["layers"]]
    chain = []
    for a, b in zip(keep, keep[1:]):
        gain = 1.0
        for k in range(a + 1, b + 1):  # the edges from node a to node b, through the left-out ones
            gain *= _f(into.get(nodes[k]["id"], {}).get("gain"))
        edge = {**into.get(nodes[b]["id"], {"weight": math.nan}), "source": nodes[a]["id"], "target": nodes[b]["id"], "gain": gain}
        if b - a > 1:
            edge["skipped"] = b - a - 1
        chain.append(edge)
    return {**layer_map, "nodes": [nodes[k] for k in keep], "edges": chain}


def _left_out_note(meta: dict, width: int) -> list[str]:
    """The lines under the matrix: the leaf layers the default layers leave out and the layers no
    intervention moves (``meta["left_out"]``, ``meta["unmoved"]``), which the chain does not show;
    ``width`` characters a line."""
    lines = []
    if meta.get("left_out"):
        by_why: dict[str, list[str]] = {}  # the layers of one reason together: a mixture's experts share one
        for layer, why in meta["left_out"].items():
            by_why.setdefault(str(why), []).append(str(layer))
        lines.append("left out: " + "; ".join(f"{', '.join(layers)} ({why})" for why, layers in by_why.items()))
    if meta.get("unmoved"):
        lines.append("no intervention moves: " + ", ".join(meta["unmoved"]))
    return [wrapped for line in lines for wrapped in textwrap.wrap(line, width)]


def _chain(ax: Any, layer_map: dict, labels: list[str]) -> None:
    """The nodes from top to bottom at x = 0: labels to the right, each edge's ``s`` and gain to the
    left of its arrow, all 8 points."""
    nodes = [node["id"] for node in layer_map["nodes"]]
    y = {name: -float(i) for i, name in enumerate(nodes)}
    weight_in = {e["target"]: _f(e["weight"]) for e in layer_map["edges"]}
    top = max([w for w in weight_in.values() if math.isfinite(w)] + [1e-12])
    for name, label in zip(nodes, labels):
        w = weight_in.get(name, top)
        ax.scatter([0.0], [y[name]], s=50 + 250 * (w / top if math.isfinite(w) else 0.0), color="0.85", edgecolors="0.2",
                   zorder=3)
        ax.annotate(label, (0.0, y[name]), xytext=(14, 0), textcoords="offset points", fontsize=8, ha="left", va="center")
    for e in layer_map["edges"]:
        y0, y1 = y[e["source"]], y[e["target"]]
        ax.annotate("", xy=(0.0, y1 + 0.22), xytext=(0.0, y0 - 0.22), arrowprops={"arrowstyle": "->", "color": "0.3"})
        gain = _f(e.get("gain"))  # 0/0 where nothing reaches the source (a layer no intervention moves)
        text = f"s {_f(e['weight']):.2g}, gain {gain:.2g}" if math.isfinite(gain) else f"s {_f(e['weight']):.2g}, gain –"
        if e.get("skipped"):  # a capped chain: the gain over the nodes left out between
            text += f"\nover {e['skipped']} node{'s' if e['skipped'] > 1 else ''} not drawn"
        ax.annotate(text, (0.0, (y0 + y1) / 2), xytext=(-8, 0), textcoords="offset points", fontsize=8, ha="right",
                    va="center", color="0.25")
    ax.set_xlim(-1.0, 1.0)
    ax.set_ylim(-len(nodes) + 0.5, 0.5)
    ax.axis("off")
