"""Split a model at a layer with ``torch.fx`` so that only the part after the layer (the suffix)
runs on a batch of intervened activations.

The split is refused (``None``) when it cannot be exact: the model does not trace, the layer is
called more than once, or a tensor computed from the input before the layer is used after it
(a skip connection crossing the layer). Callers then fall back to full forward passes.
"""

from __future__ import annotations

import torch.fx as fx
from torch import nn

__all__ = ["suffix_module"]


class _LeafTracer(fx.Tracer):
    def __init__(self, leaf: str) -> None:
        super().__init__()
        self._leaf = leaf

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname == self._leaf or super().is_leaf_module(m, qualname)


def _trace(model: nn.Module, layer: str) -> fx.Graph | None:
    try:
        return _LeafTracer(layer).trace(model)
    except Exception:  # noqa: BLE001 - any tracing failure means: use the fallback
        return None


def suffix_module(model: nn.Module, layer: str) -> nn.Module | None:
    """A module mapping the output of ``layer`` to the model's output, or ``None`` if impossible."""
    graph = _trace(model, layer)
    if graph is None:
        return None
    nodes = list(graph.nodes)
    sites = [n for n in nodes if n.op == "call_module" and n.target == layer]
    if len(sites) != 1:
        return None
    site = sites[0]
    from_input: set[fx.Node] = set()
    after: set[fx.Node] = {site}
    for n in nodes:
        if n.op == "placeholder" or any(a in from_input for a in n.all_input_nodes):
            from_input.add(n)
        if n is not site and any(a in after for a in n.all_input_nodes):
            after.add(n)
    for n in after:
        if n is site:
            continue
        if any(a not in after and a in from_input for a in n.all_input_nodes):
            return None
    output = next(n for n in nodes if n.op == "output")
    if output not in after:
        return None

    new = fx.Graph()
    env: dict[fx.Node, fx.Node] = {site: new.placeholder("activation")}

    def get(a: fx.Node) -> fx.Node:
        if a not in env:  # constants and parameters used after the layer
            env[a] = new.node_copy(a, get)
        return env[a]

    for n in nodes:
        if n in after and n is not site:
            env[n] = new.node_copy(n, get)
    new.lint()
    return fx.GraphModule(model, new)
