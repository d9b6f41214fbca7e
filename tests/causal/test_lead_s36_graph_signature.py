"""graph._graph repeats causal_graph's signature (it takes graph_stability's private copies= and traces= besides): a
parameter added to one and not the other, or a default changed in one, would make graph_stability's graphs differ from
causal_graph's in silence. The two must match (the lead, session 36, second final read's duplicate D1)."""

import inspect

from lightning_causal.causal.structure import graph


def test_the_private_graph_takes_causal_graphs_parameters_and_defaults() -> None:
    public = inspect.signature(graph.causal_graph).parameters
    private = {k: p for k, p in inspect.signature(graph._graph).parameters.items() if k not in ("copies", "traces")}
    assert list(private) == list(public)
    assert [(p.kind, p.default, p.annotation) for p in private.values()] == \
        [(p.kind, p.default, p.annotation) for p in public.values()]
