"""Figures of the structural explanations, drawn from their dict exports as plain
matplotlib ``Figure`` objects:
:func:`graph_figure` for ``CausalGraph.to_dict()`` and :func:`layer_map_figure` for
``LayerCausalMap.to_dict()``."""

from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Rectangle

from lightning_causal.causal.engine.units import unit_kind

__all__ = ["graph_figure", "layer_map_figure"]

_POS, _NEG = "tab:red", "tab:blue"


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _columns(graph: dict) -> list[tuple[str, list[dict]]]:
    layers = list(graph.get("layers", [])) + ["output"]
    nodes = graph.get("nodes", [])
    return [(layer, [n for n in nodes if n["layer"] == layer]) for layer in layers]


def column_labels(layers: list[str]) -> list[str]:
    """Column titles: the layer names without the dotted prefix they all share (two or more
    layers), long ones broken at dots, so that ``model.bert.encoder.layer.0.attention.self`` beside
    ``...layer.1.intermediate`` reads ``0.attention.self`` and ``1.intermediate``.

    Examples:
        >>> column_labels(["model.enc.layer.0.attention.self", "model.enc.layer.1.intermediate", "output"])
        ['0.attention.self', '1.intermediate', 'output']
        >>> column_labels(["conv1", "conv2"]), column_labels(["model.a_very_long_block_name.sublayer"])
        (['conv1', 'conv2'], ['model\\n.a_very_long_block_name\\n.sublayer'])
    """
    named = [n for n in layers if n != "output"]
    parts = [n.split(".") for n in named]
    common = 0
    if len(parts) >= 2:
        while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
            common += 1
    out = []
    for name in layers:
        label = name if name == "output" else ".".join(name.split(".")[common:])
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


def _node_strength(node: dict) -> float:
    for key in ("effect", "importance", "samples"):
        v = _f(node.get(key))
        if math.isfinite(v):
            return v
    return 1.0


def _draw_nodes(ax: Any, columns: list[tuple[str, list[dict]]], height: int,
                kinds: dict[str, str] | None = None) -> dict[str, tuple[float, float]]:
    pos: dict[str, tuple[float, float]] = {}
    kinds = kinds or {}
    labels = [label + (f"\n({kinds[layer]})" if layer in kinds else "")
              for label, (layer, _) in zip(column_labels([layer for layer, _ in columns]), columns)]
    for x, (layer, nodes) in enumerate(columns):
        top = max([abs(_node_strength(n)) for n in nodes] + [1e-12])
        for k, n in enumerate(nodes):
            y = (len(nodes) - 1) / 2.0 - k
            pos[n["id"]] = (x, y)
            v = _node_strength(n)
            face = "0.65" if layer == "output" else ("#f4c7c3" if v >= 0 else "#c6dbef")
            ax.scatter([x], [y], s=40 + 360 * abs(v) / top, color=face, edgecolors="0.2", zorder=3)
            ax.annotate(str(n["unit"]), (x, y), fontsize=7, ha="center", va="center", zorder=4)
        ax.text(x, (height - 1) / 2.0 + 0.7, labels[x], ha="center", va="bottom", fontsize=8, fontweight="bold")
    return pos


def _draw_edges(ax: Any, edges: list[dict], pos: dict[str, tuple[float, float]]) -> None:
    """Weakest first, so that strong edges lie on top; edges that skip a column are drawn as arcs."""
    for e in sorted(edges, key=lambda e: abs(_f(e["weight"])) if math.isfinite(_f(e["weight"])) else 0.0):
        if e["source"] not in pos or e["target"] not in pos:
            continue
        w = _f(e["weight"])
        w = w if math.isfinite(w) else 0.0
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        style = {"color": _POS if w >= 0 else _NEG, "lw": 0.4 + 3.2 * min(abs(w), 1.0), "alpha": 0.3 + 0.6 * min(abs(w), 1.0)}
        if x1 - x0 > 1:
            ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), connectionstyle="arc3,rad=-0.25", arrowstyle="-",
                                         zorder=2, **style))
        else:
            ax.plot([x0, x1], [y0, y1], zorder=2, **style)


def graph_figure(graph: dict, title: str | None = None) -> Figure:
    """The causal graph as layered columns: one column per layer (strongest unit on top), node
    area ∝ |mean effect| (relative to the layer's strongest node; output nodes ∝ samples), node
    colour = sign of the unit effect; edge width and opacity ∝ |weight| (the path effect relative
    to the strongest edge into the same layer), red = positive (the path supports the explained
    output), blue = negative; edges that skip a column (paths around the layers in between) are
    arcs. The title gives the numbers of nodes and edges and the faithfulness.

    Examples:
        >>> fig = graph_figure({"layers": ["fc"], "nodes": [{"id": "fc:0", "layer": "fc", "unit": 0, "effect": 1.0},
        ...     {"id": "output:1", "layer": "output", "unit": 1, "samples": 3}],
        ...     "edges": [{"source": "fc:0", "target": "output:1", "weight": -1.0}], "meta": {}})
        >>> len(fig.axes)
        1
    """
    columns = _columns(graph)
    height = max([len(ns) for _, ns in columns] + [1])
    layouts = graph.get("meta", {}).get("unit_layouts") or {}
    kinds = {layer: f"{kind}s" for layer, o in layouts.items() if (kind := unit_kind(o.get("unit_dim"), o.get("num_heads")))}
    lines = max(label.count("\n") + 1 + (layer in kinds) for label, (layer, _) in zip(column_labels([c for c, _ in columns]), columns))
    extra = max(0, lines - 2)  # column titles of more than two lines: room above the nodes
    fig = Figure(figsize=(1.0 + 1.15 * len(columns), 1.5 + 0.45 * height + 0.15 * extra))  # ~5 inches (a card's width) for 3 columns
    ax = fig.subplots()
    pos = _draw_nodes(ax, columns, height, kinds)
    _draw_edges(ax, graph.get("edges", []), pos)
    faith = _f(graph.get("meta", {}).get("faithfulness"))
    hidden = sum(len(ns) for layer, ns in columns if layer != "output")
    default = (f"causal graph: {hidden} nodes, {len(graph.get('edges', []))} edges"
               + (f", faithfulness {faith:.2f}" if math.isfinite(faith) else ""))
    ax.set_title(title or default, fontsize=9)
    ax.legend(handles=[Line2D([], [], color=_POS, lw=2.5, label="positive path effect"),
                       Line2D([], [], color=_NEG, lw=2.5, label="negative path effect"),
                       Line2D([], [], color="0.4", lw=0.7, label="weak (width ∝ |effect|)")],
              loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=7, frameon=False)
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(-(height - 1) / 2.0 - 1.1, (height - 1) / 2.0 + 1.2 + 0.35 * extra)
    ax.axis("off")
    fig.tight_layout()
    return fig


def layer_map_figure(layer_map: dict, title: str | None = None) -> Figure:
    """Left: the CKA matrix of the layers' response profiles with the merged causal nodes boxed.
    Right: the chain of causal nodes; node area ∝ relative response, edges labelled with the
    response reaching the node and the gain.

    Examples:
        >>> fig = layer_map_figure({"layers": ["a", "b"], "cka": [[1.0, 0.95], [0.95, 1.0]], "response": [0.5, 0.4],
        ...     "threshold": 0.9, "nodes": [{"id": "<input>", "layers": []}, {"id": "a..b", "layers": ["a", "b"]},
        ...     {"id": "<output>", "layers": []}], "edges": [{"source": "<input>", "target": "a..b", "weight": 0.5, "gain": 1.0},
        ...     {"source": "a..b", "target": "<output>", "weight": 0.1, "gain": 0.25}]})
        >>> len(fig.axes)
        3
    """
    layers = list(layer_map["layers"])
    cka = [[_f(v) for v in row] for row in layer_map["cka"]]
    n = len(layers)
    fig = Figure(figsize=(4.0 + 0.35 * n + 1.3 * len(layer_map['nodes']), 1.5 + max(3.0, 0.3 * n)))
    (ax, ax2) = fig.subplots(1, 2, gridspec_kw={'width_ratios': [1.0, 1.6]})
    im = ax.imshow(cka, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(layers, rotation=90, fontsize=7)
    ax.set_yticklabels(layers, fontsize=7)
    index = {name: i for i, name in enumerate(layers)}
    for node in layer_map["nodes"]:
        if node["layers"]:
            a, b = index[node["layers"][0]], index[node["layers"][-1]]
            ax.add_patch(Rectangle((a - 0.5, a - 0.5), b - a + 1, b - a + 1, fill=False, ec="white", lw=2))
    ax.set_title(f"linear CKA (merge >= {_f(layer_map.get('threshold')):.2f})", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    _chain(ax2, layer_map)
    ax2.set_title(title or f"layer causal map: {sum(1 for m in layer_map['nodes'] if m['layers'])} causal nodes", fontsize=9)
    fig.tight_layout()
    return fig


def _chain(ax: Any, layer_map: dict) -> None:
    nodes = [m["id"] for m in layer_map["nodes"]]
    x = {name: i for i, name in enumerate(nodes)}
    weight_in = {e["target"]: _f(e["weight"]) for e in layer_map["edges"]}
    top = max([w for w in weight_in.values() if math.isfinite(w)] + [1e-12])
    for name in nodes:
        w = weight_in.get(name, top)
        size = 80 + 900 * (w / top if math.isfinite(w) else 0.0)
        ax.scatter([x[name]], [0], s=size, color="0.85", edgecolors="0.2", zorder=3)
        ax.annotate(name, (x[name], -0.35), fontsize=7, ha="center", va="top", rotation=30)
    for e in layer_map["edges"]:
        x0, x1 = x[e["source"]], x[e["target"]]
        ax.annotate("", xy=(x1 - 0.12, 0), xytext=(x0 + 0.12, 0), arrowprops={"arrowstyle": "->", "color": "0.3"})
        ax.text((x0 + x1) / 2, 0.18, f"s={_f(e['weight']):.2g}\ngain={_f(e.get('gain')):.2g}", fontsize=6, ha="center")
    ax.set_xlim(-0.6, len(nodes) - 0.4)
    ax.set_ylim(-1.2, 0.8)
    ax.axis("off")
