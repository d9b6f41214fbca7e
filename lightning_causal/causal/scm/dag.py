"""The graph of an :class:`~lightning_causal.causal.scm.scm.AdditiveNoiseSCM`: checked and ordered.

:func:`check_graph` validates the column names and the ``parents`` mapping (unique names, known
parents, no self-loop); :func:`topological_order` orders the columns (Kahn's algorithm, ties broken
by column order) and names a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["check_graph", "topological_order"]


def topological_order(columns: list[str], parents: dict[str, list[str]]) -> list[int]:
    """Kahn's algorithm, ties broken by column order; a cycle raises ``ValueError`` naming it."""
    index = {c: i for i, c in enumerate(columns)}
    pending = {c: set(parents.get(c, [])) for c in columns}
    order: list[int] = []
    while pending:
        ready = [c for c in columns if c in pending and not pending[c]]
        if not ready:
            raise ValueError(f"Expected argument `parents` to describe a DAG but the columns {sorted(pending)} form a cycle")
        for c in ready:
            order.append(index[c])
            del pending[c]
        for deps in pending.values():
            deps.difference_update(ready)
    return order


def check_graph(columns: Sequence[str], parents: Mapping[str, Sequence[str]]) -> tuple[list[str], dict[str, list[str]]]:
    """``(columns, parents)`` as lists, validated: unique non-empty column names; parents that are known
    columns other than the child (a bare name is one parent; repeats dropped)."""
    if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
        raise ValueError(f"Expected argument `columns` to be a non-empty sequence of names but got {columns!r}")
    cols = list(columns)
    if not all(isinstance(c, str) and c for c in cols) or len(set(cols)) != len(cols):
        raise ValueError(f"Expected argument `columns` to hold unique non-empty strings but got {cols}")
    if not isinstance(parents, Mapping):
        raise TypeError(f"Expected argument `parents` to be a mapping child -> parent names but got {type(parents)}")
    known = set(cols)
    graph: dict[str, list[str]] = {}
    for child, pas in parents.items():
        pas = [pas] if isinstance(pas, str) else list(pas)
        unknown = [n for n in [child, *pas] if n not in known]
        if unknown:
            raise ValueError(f"Expected argument `parents` to name only columns {cols} but got unknown {unknown}")
        if child in pas:
            raise ValueError(f"Expected argument `parents` to describe a DAG but column {child!r} is its own parent")
        graph[child] = list(dict.fromkeys(pas))
    return cols, graph
