"""The causal graph as data: :class:`CausalGraph` (nodes, signed edges and their statistics) with
its exports (``to_dict``/``from_dict``, networkx, Graphviz DOT) and comparison across runs
(``jaccard``, ``diff``). Built by :func:`~lightning_causal.causal.structure.graph.causal_graph`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COUNT_STATS", "CausalGraph", "OUTPUT", "count_stat"]

OUTPUT = "output"


_NON_FINITE = ("nan", "inf", "-inf")  # how plain_number writes them


COUNT_STATS = ("class", "samples")  # the statistics of nodes and edges that are class indices and sample counts


def count_stat(key: str, value: Any) -> int | float:
    """A node's or edge's statistic ``key`` as its number: an ``int`` for a class index or a sample count
    (:data:`COUNT_STATS`), so that ``class_names[node["class"]]`` works and the report writes ``2``, not ``2.0``; a
    ``float`` for every other (an effect, a z-score, a p-value).

    Args:
        key: the statistic's name (``"class"``, ``"samples"``, ``"effect"``, ...).
        value: its value (a float, a one-element tensor, a number read from JSON).

    Examples:
        >>> count_stat("class", 2.0), count_stat("samples", 10), count_stat("z", 3)
        (2, 10, 3.0)
    """
    return int(value) if key in COUNT_STATS else float(value)


def plain_number(v: float) -> float | str:
    """JSON-safe float: infinities and NaN become strings (``float()`` reads them back).

    Args:
        v: a float.
    """
    return v if math.isfinite(v) else str(v)


@dataclass
class CausalGraph:
    """A layered causal graph: node ids ``"<layer>:<unit>"`` and ``"output:<class>"``.

    Attributes:
        layers: the chosen layers in forward order (the output column is implicit).
        nodes: node ids, layer by layer, most important first.
        edges: ``(source, target, weight)``; ``weight`` is the mean path effect of the edge on the
            explained output, signed, divided by the largest magnitude among the kept edges into
            the same layer (the strongest edge into a layer is ±1; the output counts as a layer).
        node_stats: id -> ``effect`` (mean unit effect ``E[e_u]`` over all samples),
            ``importance`` (``E|e_u|``) and the node test of its deciding ``class`` (its index, an ``int``):
            ``class_effect`` (mean over the samples explained as that class), ``se``, ``z``,
            ``p_value``, ``share`` (of the layer's strongest effect for that class); output
            nodes: ``samples`` (an ``int``), ``logit``.
        edge_stats: parallel to ``edges``: ``effect`` (mean path effect), ``se``, ``z``,
            ``p_value``, ``p_adjusted`` (after the multiple-testing correction), ``share`` (of the
            strongest path effect into the same target unit), ``samples`` (an ``int``).
        meta: settings and diagnostics (``faithfulness``, ``units`` (each layer's number of units: graphs whose
            ``units`` differ do not number the same units), ``outputs`` (the explained output's columns), ``candidates`` (edges from nodes), ``tests`` (the
            correction's family: edges from every unit with a path), ``alpha``, ...).

    Examples:
        >>> g = CausalGraph(["fc"], ["fc:0", "output:1"], [("fc:0", "output:1", 1.0)])
        >>> CausalGraph.from_dict(g.to_dict()).edges
        [('fc:0', 'output:1', 1.0)]
    """

    layers: list[str]
    nodes: list[str]
    edges: list[tuple[str, str, float]]
    node_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    edge_stats: list[dict[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def edge_set(self) -> set[tuple[str, str]]:
        """The ``(source, target)`` pairs."""
        return {(s, t) for s, t, _ in self.edges}

    def jaccard(self, other: CausalGraph) -> float:
        """``|E ∩ E'| / |E ∪ E'|`` of the edge sets (1.0 when both are empty).

        Args:
            other: the graph compared with.
        """
        a, b = self.edge_set(), other.edge_set()
        return len(a & b) / len(a | b) if a | b else 1.0

    def diff(self, previous: CausalGraph) -> dict[str, Any]:
        """Edges gained and lost since ``previous`` (e.g. the graph of the last audit epoch).

        Args:
            previous: the earlier graph.

        Examples:
            >>> old = CausalGraph(["a"], [], [("a:0", "output:0", 1.0)])
            >>> new = CausalGraph(["a"], [], [("a:1", "output:0", 1.0)])
            >>> new.diff(old)["gained"], new.diff(old)["lost"]
            ([('a:1', 'output:0')], [('a:0', 'output:0')])
        """
        now, before = self.edge_set(), previous.edge_set()
        return {"gained": sorted(now - before), "lost": sorted(before - now), "kept": len(now & before),
                "jaccard": self.jaccard(previous)}

    def without_edges(self, pairs: set[tuple[str, str]] | list[tuple[str, str]]) -> CausalGraph:
        """A copy without the edges ``(source, target)`` in ``pairs`` (nodes unchanged), e.g. to
        measure how much of the faithfulness an edge carries.

        Args:
            pairs: ``(source, target)`` node ids of the edges to drop.

        Examples:
            >>> g = CausalGraph(["a"], ["a:0", "a:1", "output:0"], [("a:0", "output:0", 1.0), ("a:1", "output:0", 0.5)])
            >>> g.without_edges({("a:1", "output:0")}).edges
            [('a:0', 'output:0', 1.0)]
        """
        drop = set(pairs)
        stats = self.edge_stats or [{} for _ in self.edges]
        kept = [(e, st) for e, st in zip(self.edges, stats) if (e[0], e[1]) not in drop]
        return CausalGraph(list(self.layers), list(self.nodes), [e for e, _ in kept],
                           dict(self.node_stats), [dict(st) for _, st in kept] if self.edge_stats else [], dict(self.meta))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able export (``kind = "causal_graph"``); :meth:`from_dict` reads it back."""
        nodes = []
        for n in self.nodes:
            layer, unit = n.rsplit(":", 1)
            nodes.append({"id": n, "layer": layer, "unit": int(unit),
                          **{k: _written(k, v) for k, v in self.node_stats.get(n, {}).items()}})
        stats = self.edge_stats or [{} for _ in self.edges]
        edges = [{"source": s, "target": t, "weight": plain_number(float(w)), **{k: _written(k, v) for k, v in st.items()}}
                 for (s, t, w), st in zip(self.edges, stats)]
        return {"kind": "causal_graph", "layers": list(self.layers), "nodes": nodes, "edges": edges,
                "meta": {k: plain_number(v) if isinstance(v, float) else v for k, v in self.meta.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CausalGraph:
        """Inverse of :meth:`to_dict`.

        Args:
            data: a dict from :meth:`to_dict` (``kind == "causal_graph"``).
        """
        if not isinstance(data, dict) or data.get("kind") != "causal_graph":
            raise ValueError("Expected argument `data` to be a dict from CausalGraph.to_dict() (kind 'causal_graph')")
        node_keys, edge_keys = {"id", "layer", "unit"}, {"source", "target", "weight"}
        nodes = [n["id"] for n in data["nodes"]]
        node_stats = {n["id"]: {k: count_stat(k, v) for k, v in n.items() if k not in node_keys} for n in data["nodes"]}
        edges = [(e["source"], e["target"], float(e["weight"])) for e in data["edges"]]
        edge_stats = [{k: count_stat(k, v) for k, v in e.items() if k not in edge_keys} for e in data["edges"]]
        meta = {k: float(v) if isinstance(v, str) and v in _NON_FINITE else v for k, v in data.get("meta", {}).items()}
        return cls(list(data["layers"]), nodes, edges, node_stats, edge_stats, meta)

    def to_networkx(self) -> Any:
        """A ``networkx.DiGraph`` with node attributes (layer, unit, stats) and edge attributes
        (weight, stats). Needs ``networkx`` (optional dependency)."""
        try:
            import networkx as nx
        except ImportError as err:  # pragma: no cover - networkx is a dev dependency
            raise ImportError("CausalGraph.to_networkx needs networkx: pip install networkx") from err
        g = nx.DiGraph()
        for node in self.to_dict()["nodes"]:
            g.add_node(node["id"], **{k: v for k, v in node.items() if k != "id"})
        for edge in self.to_dict()["edges"]:
            g.add_edge(edge["source"], edge["target"], **{k: v for k, v in edge.items() if k not in ("source", "target")})
        return g

    def to_dot(self) -> str:
        """Graphviz DOT source: one cluster per layer, edge width = |weight|, red/blue = sign."""
        q = _dot_quote
        lines = ["digraph causal_graph {", "  rankdir=LR;", "  node [shape=circle, fontsize=9];"]
        for i, layer in enumerate([*self.layers, OUTPUT]):
            members = [n for n in self.nodes if n.rsplit(":", 1)[0] == layer]
            lines.append(f"  subgraph cluster_{i} {{ label={q(layer)}; " + " ".join(
                f"{q(n)} [label={q(n.rsplit(':', 1)[1])}];" for n in members) + " }")
        for s, t, w in self.edges:
            colour = "red" if w >= 0 else "blue"
            lines.append(f"  {q(s)} -> {q(t)} [penwidth={0.5 + 3 * abs(w):.2f}, color={colour}, label=\"{w:.2f}\"];")
        lines.append("}")
        return "\n".join(lines)


def _written(key: str, value: Any) -> int | float | str:
    """A statistic as :meth:`CausalGraph.to_dict` writes it: a count as an ``int``, else a JSON-safe float."""
    number = count_stat(key, value)
    return number if isinstance(number, int) else plain_number(number)


def _dot_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
