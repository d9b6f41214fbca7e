"""Figures of the structural explanations, drawn from their dict exports as plain
matplotlib ``Figure`` objects: :func:`graph_figure` for ``CausalGraph.to_dict()``. The layer causal map's
figure, :func:`~lightning_causal.reporting.layer_map_figures.layer_map_figure`, and the layer-name labels
(``layer_labels``, ``path_tail``, ``strip_common_prefix``: ``figure_style``) are importable from here as before."""

from __future__ import annotations

import math
import textwrap
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch
from matplotlib.path import Path
from matplotlib.textpath import text_to_path

from lightning_causal.causal.engine.units import unit_kind
from lightning_causal.reporting.figure_style import (
    layer_labels,
    left_out_prefix,
    numbers_named,
    path_tail,
    short_labels,
    strip_common_prefix,
    title_lines,
    to_float,
)
from lightning_causal.reporting.layer_map_figures import layer_map_figure

__all__ = ["column_labels", "graph_figure", "layer_labels", "layer_map_figure", "node_label", "node_sizes", "path_tail", "strip_common_prefix"]

_POS, _NEG = "tab:red", "tab:blue"
_NODE_POS, _NODE_NEG = "#f4c7c3", "#c6dbef"  # a unit's own effect: light red / light blue


def _columns(graph: dict) -> list[tuple[str, list[dict]]]:
    layers = list(graph.get("layers", [])) + ["output"]
    nodes = graph.get("nodes", [])
    return [(layer, [n for n in nodes if n["layer"] == layer]) for layer in layers]


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
    stripped = iter(numbers_named(named, strip_common_prefix(named)))
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
        v = to_float(node.get(key))
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


def _draw_nodes(ax: Any, columns: list[tuple[str, list[dict]]], height: int, kinds: dict[str, str] | None = None,
                xs: list[float] | None = None, unit_labels: dict[str, str] | None = None) -> dict[str, tuple[float, float]]:
    """Each column's nodes at ``xs`` (default: 0, 1, ...), a unit's name (``unit_labels``, by node id,
    :func:`_node_labels`) left of its node, a class's name right of its output node."""
    pos: dict[str, tuple[float, float]] = {}
    kinds, unit_labels = kinds or {}, unit_labels or {}
    labels = [label + (f"\n({kinds[layer]})" if layer in kinds else "")
              for label, (layer, _) in zip(column_labels([layer for layer, _ in columns]), columns)]
    for col, (layer, nodes) in enumerate(columns):
        x = xs[col] if xs is not None else float(col)
        top = max([abs(_node_strength(n)) for n in nodes] + [1e-12])
        fontsize, lo, hi = node_sizes([str(n["unit"]) for n in nodes])
        for k, n in enumerate(nodes):
            y = (len(nodes) - 1) / 2.0 - k
            pos[n["id"]] = (x, y)
            v = _node_strength(n)
            face = "0.65" if layer == "output" else (_NODE_POS if v >= 0 else _NODE_NEG)
            ax.scatter([x], [y], s=lo + (hi - lo) * abs(v) / top, color=face, edgecolors="0.2", linewidths=_NODE_EDGE,
                       zorder=3)  # at most 17 pt across (_LARGEST): the pitch is 18
            # inside the axes by construction: not tested at every layout and draw (annotation_clip)
            ax.annotate(node_label(str(n["unit"])), (x, y), fontsize=fontsize, ha="center", va="center", zorder=4,
                        annotation_clip=False)
            if layer == "output" and n["id"] in unit_labels:  # the class, beside its node
                ax.text(x + 0.14, y, unit_labels[n["id"]], fontsize=7, ha="left", va="center", zorder=4)
            named = unit_labels.get(n["id"]) if layer != "output" else None
            if named is not None:  # left of the node, over the edges coming in (a box of its own keeps it readable)
                ax.text(x - 0.14, y, named, fontsize=7, ha="right", va="center", zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
        # above the axes, in points: the title (its pad, graph_figure) sits above them whatever the data scale
        ax.annotate(labels[col], (x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8, fontweight="bold", annotation_clip=False)
        if not nodes:  # a layer none of whose units entered the graph: say so, not an unexplained empty column
            ax.text(x, 0.0, "no unit\nkept", ha="center", va="center", fontsize=7, color="0.45", style="italic")
    return pos


def _unit_name(unit_names: dict[str, list[str]], layer: str, node: dict) -> str | None:
    """The name of a unit node (``meta["unit_names"]``, ``CausalGraphAudit(unit_names=...)``), whole."""
    names, unit = unit_names.get(layer), str(node.get("unit"))
    return str(names[int(unit)]) if names and unit.isdigit() and int(unit) < len(names) else None


def _node_labels(columns: list[tuple[str, list[dict]]], unit_names: dict[str, list[str]],
                 class_names: list[str] | None) -> dict[str, str]:
    """The names drawn beside the nodes, by node id: each unit's (``unit_names``) and each output node's class
    (``class_names``), at most 18 characters, those of the figure that a cut at the end would make alike kept apart
    (:func:`~lightning_causal.reporting.figure_style.short_labels`: ``encoder.layers.11.mlp.fc1[37]`` and
    ``...fc2[37]`` both read ``encoder.layers.11…``; now ``encoder.…p.fc1[37]`` and ``encoder.…p.fc2[37]``).

    Examples:
        >>> cols = [(f"m.fc{k}", [{"id": f"m.fc{k}:0", "unit": 0}]) for k in (1, 2)]
        >>> list(_node_labels(cols, {f"m.fc{k}": [f"encoder.layers.11.mlp.fc{k}[0]"] for k in (1, 2)}, None).values())
        ['encoder.…lp.fc1[0]', 'encoder.…lp.fc2[0]']
    """
    whole: dict[str, str] = {}
    for layer, nodes in columns:
        for n in nodes:
            unit = str(n.get("unit"))
            if layer == "output":
                name = str(class_names[int(unit)]) if class_names and unit.isdigit() and int(unit) < len(class_names) else None
            else:
                name = _unit_name(unit_names, layer, n)
            if name is not None:
                whole[n["id"]] = name
    distinct = list(dict.fromkeys(whole.values()))  # a name given twice (u0 of two layers) is one name, cut once
    cut = dict(zip(distinct, short_labels(distinct, _NAME_CHARS)))
    return {node: cut[name] for node, name in whole.items()}


def _edge_strengths(edges: list[dict]) -> list[float]:
    """Each edge's drawn strength in ``[-1, 1]``: its path effect relative to the largest ``|effect|``
    of the graph (every path effect is a change of the same explained output, so widths compare
    across layers), or its ``weight`` (relative to the strongest edge into its layer) where an edge
    has no finite ``effect``."""
    effects = [to_float(e.get("effect")) for e in edges]
    if edges and all(math.isfinite(v) for v in effects):
        top = max(abs(v) for v in effects)
        return [v / top if top > 0 else 0.0 for v in effects]
    return [w if math.isfinite(w := to_float(e.get("weight"))) else 0.0 for e in edges]


def _arc_path(x0: float, y0: float, x1: float, y1: float, top: float) -> Path:
    """An edge's arc over the columns it skips, from ``(x0, y0)`` to ``(x1, y1)`` (data units: a column is 1, a
    node's pitch 1): a quadratic Bézier curve whose control point lies ``x1 - x0`` above the middle of the chord
    (about the quarter of its length that matplotlib's ``arc3,rad=0.25`` gave, at the figure's 1.15 inch a column
    and 0.25 inch a node), lowered where the curve would rise above ``top``. The peak of the curve through
    ``y0``, ``c`` and ``y1`` is ``y0 + (c - y0)² / (2c - y0 - y1)``; it equals ``top`` at ``c = top + √((top - y0)(top - y1))``.
    With ``arc3`` an arc from the first of seven layers to the output rose 0.9 inch, above the drawing (cut off)
    and across the column titles.

    Examples:
        >>> _arc_path(0, 0, 2, 0, top=5).vertices.tolist()  # room enough: 2 above the chord
        [[0.0, 0.0], [1.0, 2.0], [2.0, 0.0]]
        >>> _arc_path(0, 0, 8, 0, top=1).vertices.tolist()  # lowered: its peak, (0 + 2 * 2 + 0) / 4, is 1
        [[0.0, 0.0], [4.0, 2.0], [8.0, 0.0]]
    """
    c = min((y0 + y1) / 2.0 + (x1 - x0), top + math.sqrt(max(top - y0, 0.0) * max(top - y1, 0.0)))
    return Path([(x0, y0), ((x0 + x1) / 2.0, c), (x1, y1)], [Path.MOVETO, Path.CURVE3, Path.CURVE3])


def _draw_edges(ax: Any, edges: list[dict], pos: dict[str, tuple[float, float]], top: float,
                xs: list[float] | None = None) -> None:
    """Weakest first, so that strong edges lie on top; edges that skip a column (the columns at ``xs``, default 0, 1,
    ...) are drawn as arcs (:func:`_arc_path`), none rising above ``top``."""
    column = {x: k for k, x in enumerate(xs)} if xs is not None else {}
    for e, w in sorted(zip(edges, _edge_strengths(edges)), key=lambda ew: abs(ew[1])):
        if e["source"] not in pos or e["target"] not in pos:
            continue
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        style = {"color": _POS if w >= 0 else _NEG, "lw": 0.4 + 3.2 * min(abs(w), 1.0), "alpha": 0.3 + 0.6 * min(abs(w), 1.0)}
        if column.get(x1, x1) - column.get(x0, x0) > 1:
            ax.add_patch(FancyArrowPatch(path=_arc_path(x0, y0, x1, y1, top), arrowstyle="-", zorder=2, **style))
        else:  # the Line2D ax.plot makes, without its argument parsing
            ax.add_line(Line2D([x0, x1], [y0, y1], zorder=2, **style))


_NAME_CHARS = 18  # a class name beside an output node: at most this many characters


def _short(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…"


_LABEL_LINE = 10.5  # points per line of a column title (8-point bold text and its leading)
_MIN_WIDTH = 4.45  # inches: the legend's three entries and the title fit (a graph of one layer has two columns)
_PITCH = 0.25  # inches between the nodes of a column
_NOTE_LINE = 0.11  # inches per line of the no-edges reason (6.5-point text and its leading)
_NOTE_CHARS = 18  # characters of 6.5-point text per inch of the figure's width (3.7 points a character measured, and a margin)
_LARGEST = _PITCH * 72 - 1.0  # points: the largest circle's diameter, 1 point under the pitch of a column's nodes


def _legend_handles() -> list[Line2D]:
    """The graph's key in two rows (the legend's three columns fill top to bottom): the edges, then the nodes."""
    def node(face: str, label: str) -> Line2D:
        return Line2D([], [], ls="", marker="o", markersize=7, markerfacecolor=face, markeredgecolor="0.2", label=label)

    return [Line2D([], [], color=_POS, lw=2.5, label="positive path effect"), node(_NODE_POS, "unit effect > 0"),
            Line2D([], [], color=_NEG, lw=2.5, label="negative path effect"), node(_NODE_NEG, "unit effect < 0"),
            Line2D([], [], color="0.4", lw=0.7, label="weak (width ∝ |effect|)"), node("white", "node area ∝ |effect|")]


def _class_name(meta: dict, k: int) -> str:
    """Class ``k`` as the graph's ``meta["class_names"]`` names it (``"3 (cat)"``), else its number."""
    names = meta.get("class_names") or []
    return f"{k} ({_short(str(names[k]))})" if 0 <= k < len(names) else str(k)


_TITLE_CHARS = 14  # characters of the 9-point title per inch of the figure's width (6.3–6.8 pixels a character at 100 dpi)


def _fitted_title(title: str, width: float) -> str:
    """The default title's first line in lines that fit the figure's ``width`` (inches), as every figure's title
    (:func:`~.figure_style.title_lines`: after its ``": "``, else at spaces): a model's class name of up to 28
    characters (``causal graph of LightningClassifier: 16 nodes, 44 edges, faithfulness 0.76``, 75 characters) ran
    past both edges of a 4.45-inch figure of three columns.

    Examples:
        >>> _fitted_title("causal graph of AVeryLongModelClassName: 16 nodes, 44 edges, faithfulness 0.76\\neffects", 4.45)
        'causal graph of AVeryLongModelClassName:\\n16 nodes, 44 edges, faithfulness 0.76\\neffects'
    """
    first, sep, rest = title.partition("\n")
    return "\n".join(title_lines(first, max(20, int(width * _TITLE_CHARS)))) + sep + rest


def _effects_line(meta: dict) -> str:
    """The title's second line: what the unit and path effects are, from ``meta["baseline"]`` (``causal_graph``'s
    ``"zero"``, ``"mean"`` or a number): ``"\neffects of do(unit := 0) on the explained class's score"``; ``""``
    where the graph does not say. On what (``CausalGraphAudit``'s ``meta``): ``the output`` (``outputs`` 1), ``output k``
    / ``the explained output`` (``regression``, with or without an int ``target``), ``label k's logit`` / ``the
    explained label's logit`` (``multi_label``), else ``class k's score`` / ``the explained class's score``.

    Examples:
        >>> _effects_line({"baseline": "zero", "outputs": 3, "regression": True, "target": 1})
        '\\neffects of do(unit := 0) on output 1'
    """
    b = meta.get("baseline")
    value = "0" if b == "zero" else "its mean" if b == "mean" else f"{b:g}" if isinstance(b, (int, float)) and not isinstance(b, bool) else None
    if value is None:
        return ""
    t = meta.get("target")
    k = t if isinstance(t, int) and not isinstance(t, bool) else None
    on = ("the output" if meta.get("outputs") == 1
          else ("the explained output" if k is None else f"output {k}") if meta.get("regression")
          else ("the explained label's logit" if k is None else f"label {k}'s logit") if meta.get("multi_label")
          else "the explained class's score" if k is None else f"class {_class_name(meta, k)}'s score")
    return f"\neffects of do(unit := {value}) on {on}"


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
    arcs, kept under the column titles however many columns they span (:func:`_arc_path`); a layer with no unit in the graph reads "no unit kept". The legend's two rows say so for the edges and
    the nodes. The title gives the numbers of
    nodes and edges and the faithfulness, and the module whose path the column titles leave out (``causal graph of
    image``: ``fc`` is ``image.fc``, not a text tower's ``text.fc``; :func:`~.figure_style.left_out_prefix`). With ``meta["class_names"]`` (``CausalGraphAudit(class_names=...)``)
    each output node's class name is written beside it (at most 18 characters); with ``meta["unit_names"]``
    (``CausalGraphAudit(unit_names=...)``) each unit node's name left of it (at most 18 characters, on a white box over
    the edges coming in; names a cut at the end would make alike, units of one deep layer, cut apart: :func:`_node_labels`), the columns set apart by the room the names take. A column draws at most 16 nodes
    (a TensorBoard card shrinks a taller figure past reading: a 1000-class model explains every class its probe
    predicts): a layer's first ones, strongest first as the audit lists them, and the classes with the strongest
    edges into them, in their order; its title then says how many of how many (``output (16 of 36)``), the figure's
    title gives the graph's own numbers, and the ``nodes`` and ``edges`` tables hold them all. A graph of nodes and no
    edges says why under its nodes, in the words of ``CausalGraphAudit``'s note on the card and in the report
    (``meta["no_edges"]``: the edge tests, the correction, alpha, the samples per explained class and the ways out).

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
    named = graph.get("meta", {}).get("unit_kinds") or {}  # CausalGraphAudit's: positions after a convolution, modes
    kinds = {layer: f"{kind}s" for layer, o in layouts.items()
             if (kind := named.get(layer) or unit_kind(o.get("unit_dim"), o.get("num_heads")))}
    for layer, nodes in columns:  # a capped column says how many of its nodes it draws
        if layer in totals:
            kinds[layer] = "; ".join(([kinds[layer]] if layer in kinds else []) + [f"{len(nodes)} of {totals[layer]}"])
    lines = max(label.count("\n") + 1 + (layer in kinds) for label, (layer, _) in zip(column_labels([c for c, _ in columns]), columns))
    extra = max(0, lines - 2)  # column titles of more than two lines: room above the nodes
    names = graph.get("meta", {}).get("class_names") or None
    margin = 0.14 + 0.06 * max(len(_short(str(c))) for c in names) if names else 0.0  # data units right of the output column
    drawn_names = _node_labels(columns, graph.get("meta", {}).get("unit_names") or {}, names)
    rooms = [0.14 + 0.06 * max(len(named) for named in drawn) if layer != "output" and (drawn := [drawn_names[n["id"]] for n in nodes
             if n["id"] in drawn_names]) else 0.0 for layer, nodes in columns]
    xs = [0.0]  # a column 1 data unit after the one before, and the room of its nodes' longest name
    for room in rooms[1:]:
        xs.append(xs[-1] + 1.0 + room)
    span = xs[-1] + 1.0 + rooms[0] + margin  # data units: the columns, the first one's names, the class names
    width = max(1.0 + 1.15 * span, _MIN_WIDTH)  # ~5 inches (a card's width) for 3 columns; one layer: room for the legend
    # 0.25 inch per node of the tallest column (was 0.45: eight units per layer made a 445 x 510 figure, which a
    # TensorBoard card, a box of about 400 x 215 pixels, showed at 0.42, its labels unreadable; 0.28 and 1.5 inches
    # for the title and legend: 489 x 374, at 0.57; now 325 high, at 0.66, the largest markers 5 pixels apart)
    reason = graph.get("meta", {}).get("no_edges") if not graph.get("edges") else None  # CausalGraphAudit's note
    why = textwrap.wrap(f"Why no edges: {reason}", int(width * _NOTE_CHARS)) if isinstance(reason, str) and reason else []
    room = _NOTE_LINE * len(why) + 0.1 * bool(why)  # inches under the legend (0.1: its margins)
    drawing = 1.25 + _PITCH * height + 0.15 * extra  # 1.25: the title, the legend's two rows
    fig = Figure(figsize=(width, drawing + room))
    FigureCanvasAgg(fig)  # tight_layout measures the texts on the renderer the drawing uses (else on one of its own)
    ax = fig.subplots()
    pos = _draw_nodes(ax, columns, height, kinds, xs, drawn_names)
    _draw_edges(ax, graph.get("edges", []), pos, (height - 1) / 2.0 + 1.0, xs)  # the arcs' peaks: inside the y limits below
    faith = to_float(graph.get("meta", {}).get("faithfulness"))
    hidden = sum(totals.get(layer, len(ns)) for layer, ns in columns if layer != "output")  # drawn or not
    within = left_out_prefix([layer for layer, _ in columns if layer != "output"],  # the tower whose layers the labels name
                             whole=graph.get("meta", {}).get("whole_model"))
    default = (f"causal graph{f' of {within}' if within else ''}: {hidden} nodes, {len(graph.get('edges', []))} edges"
               + (f", faithfulness {faith:.2f}" if math.isfinite(faith) else "") + _effects_line(graph.get("meta", {})))
    # above the column titles; y given: no axis is drawn, so matplotlib's search for tick labels above the axes (ticks
    # computed at every layout and draw) would find none and put it at 1.0 too
    ax.set_title(title or _fitted_title(default, width), fontsize=9, pad=6 + _LABEL_LINE * lines, y=1.0)
    ax.legend(handles=_legend_handles(), loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=7, frameon=False)
    ax.set_xlim(-0.6 - rooms[0], xs[-1] + 0.6 + margin)
    ax.set_ylim(-(height - 1) / 2.0 - 1.9, (height - 1) / 2.0 + 1.2)  # room for the arcs above the top node, the legend below
    ax.axis("off")
    fig.tight_layout(rect=(0.0, room / (drawing + room), 1.0, 1.0))  # the drawing as without a reason, above its strip
    if why:  # the same words as the card's and the report's note, in a strip of their own under the legend
        fig.text(0.5, (room - 0.05) / (drawing + room), "\n".join(why), ha="center", va="top", fontsize=6.5, color="0.25",
                 linespacing=1.15)
    return fig
