"""A graph of the same shape as a causal graph, built from Captum attributions instead of
interventions: the baseline of the seed paper's claim that causal graphs are more stable and more
faithful than attribution-based ones (Ahmad et al. 2023).

Nodes: in each layer, the units with the largest mean ``LayerConductance`` (Dhamdhere et al. 2018)
for the explained class. Edges between hidden layers: the pairs whose source has the largest mean
conductance for the target unit's activation (summed over positions); edges into ``output:c``:
the largest mean conductance for class ``c`` over the samples explained as ``c``. "Largest" as the
reference graph (``like``) ranks its effects: signed for ``alternative="greater"`` (the units that
support the output; :func:`~lightning_causal.causal.structure.graph.causal_graph`'s default), by
magnitude for ``"two-sided"`` (a unit that works against the output counts as much). The numbers of
nodes per layer and of edges per pair of layers are those of ``like``, so that both graphs are
compared at equal size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.baselines.captum_methods import layer_attribute
from lightning_causal.causal.engine.input_sites import input_sites
from lightning_causal.causal.engine.interventions import module_output, resolve_module
from lightning_causal.causal.engine.stacked_rows import rows_alone_checked
from lightning_causal.causal.engine.state import audit_mode, resolve_target
from lightning_causal.causal.engine.units import resolve_layout, to_units
from lightning_causal.causal.structure.graph_data import OUTPUT, CausalGraph

__all__ = ["attribution_graph"]


class _LayerUnits(nn.Module):
    """``x -> activation of `layer` summed over each unit's positions [N, U]``: a forward function
    whose "classes" are the units of a hidden layer (``layout``: its ``unit_dim``/``num_heads``)."""

    def __init__(self, model: nn.Module, layer: str, layout: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model, self.layer, self.layout = model, layer, dict(layout or {})

    def forward(self, x: Tensor) -> Tensor:
        got: list[Tensor] = []
        handle = resolve_module(self.model, self.layer).register_forward_hook(
            lambda _m, _i, o: got.append(module_output(o, self.layer).clone()))  # before any in-place op of the model
        try:
            self.model(x)
        finally:
            handle.remove()
        h = to_units(got[0], resolve_layout(got[0].shape, self.layout.get("unit_dim"), self.layout.get("num_heads")))
        return h.flatten(2).sum(2) if h.dim() > 2 else h


def _layer_pairs(like: CausalGraph) -> dict[tuple[str, str], int]:
    """``(source layer, target layer or "output") -> number of edges`` of ``like``."""
    counts: dict[tuple[str, str], int] = {}
    for s, t, _ in like.edges:
        key = (s.rsplit(":", 1)[0], t.rsplit(":", 1)[0])
        counts[key] = counts.get(key, 0) + 1
    return counts


def _unit_to_unit(model: nn.Module, x: Tensor, source: str, target: str, units: list[int], n_steps: int,
                  max_batch_size: int | None, layouts: dict[str, dict[str, Any]]) -> Tensor:
    """Mean conductance of every unit of ``source`` for each target unit's activation: ``[k_tgt, U_src]``."""
    k, n = len(units), x.shape[0]
    reps = x.repeat(k, *([1] * (x.dim() - 1)))
    tgt = torch.as_tensor(units, device=x.device).repeat_interleave(n)
    with input_sites(model, [target]):  # a target "<module>:input" exists for every Captum pass
        cond = layer_attribute(_LayerUnits(model, target, layouts.get(target)), reps, f"model.{source}", "LayerConductance",
                               target=tgt, options={"n_steps": n_steps}, max_batch_size=max_batch_size, **layouts.get(source, {}))
    return cond.view(k, n, -1).mean(1)


def attribution_graph(
    model: nn.Module,
    inputs: Tensor,
    like: CausalGraph,
    *,
    target: int | Tensor | None = None,
    n_steps: int = 16,
    max_batch_size: int | None = None,
) -> CausalGraph:
    """The attribution graph over ``like.layers`` with ``like``'s numbers of nodes and edges.

    Node score: ``E_x[LC_u(f_t)(x)]``, the mean layer conductance of unit ``u`` for the explained
    output (summed over positions). Edge score: ``E_x[LC_i(h_j)(x)]`` for a hidden target unit ``j``
    (``h_j`` summed over positions), ``E_{x: t(x)=c}[LC_i(f_c)(x)]`` into ``output:c``. In each
    layer the highest-scoring units become nodes; between each pair of layers that ``like``
    links, the highest-scoring pairs of nodes become edges (weights: scores divided by the largest
    magnitude into the same layer). Highest as ``like`` ranks: the signed score where it tested
    ``alternative="greater"`` (its ``meta["alternative"]``; the default), ``|score|`` where ``"two-sided"``.

    Args:
        model: a classifier returning logits ``[N, classes]``.
        inputs: one input tensor ``[N, ...]``.
        like: the reference graph (e.g. :func:`~lightning_causal.causal.structure.graph.causal_graph`'s).
        target: class index, per-sample indices ``[N]`` or ``None`` (predicted class).
        n_steps: integration steps of ``LayerConductance``.
        max_batch_size: rows per forward pass.

    Raises:
        ValueError: a model whose forward branches on a statistic of its batch (the stacked-rows check of the
            LayerConductance passes: their end rows and an inner one alone too), named for this function.

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
        >>> like = CausalGraph(["1"], ["1:0", "output:0"], [("1:0", "output:0", 1.0)])
        >>> g = attribution_graph(model, torch.rand(8, 2), like, target=0)
        >>> len(g.nodes), len(g.edges)
        (2, 1)
    """
    with audit_mode(model):
        tidx = resolve_target(model(inputs), target)
    # the stacked-rows check of the LayerConductance passes below, named for this function (an outer block's name stays)
    with rows_alone_checked(f"attribution_graph (Captum's LayerConductance on the layers {list(like.layers)})", model=model,
                            rows="interpolated inputs", way_out=_WAY_OUT):
        return _attribution_graph(model, inputs, like, tidx, n_steps, max_batch_size)


#: the stacked-rows refusal's way out for :func:`attribution_graph`
_WAY_OUT = ("build the graph with the causal estimators in passes of one row (causal_graph(..., max_batch_size=1)): "
            "attribution_graph's LayerConductance runs two interpolated inputs of a sample in one pass at least, whatever "
            "`max_batch_size`")


def _attribution_graph(model: nn.Module, inputs: Tensor, like: CausalGraph, tidx: Tensor, n_steps: int,
                       max_batch_size: int | None) -> CausalGraph:
    """:func:`attribution_graph` for the resolved targets ``tidx``."""
    layouts = dict(like.meta.get("unit_layouts") or {})  # the causal graph's units (neurons, heads)
    node_score = {layer: layer_attribute(model, inputs, layer, "LayerConductance", target=tidx, options={"n_steps": n_steps},
                                         max_batch_size=max_batch_size, **layouts.get(layer, {})) for layer in like.layers}
    strength = _strength(like)
    nodes: dict[str, list[int]] = {}
    for layer in like.layers:
        k = sum(1 for n in like.nodes if n.rsplit(":", 1)[0] == layer)
        mean = node_score[layer].mean(0)
        nodes[layer] = sorted(range(mean.numel()), key=lambda u: (-strength(float(mean[u])), u))[:k]
    classes = sorted(set(tidx.tolist()))
    edges: list[tuple[str, str, float]] = []
    for (source, tgt_layer), count in _layer_pairs(like).items():
        if source not in nodes or not nodes[source]:
            continue
        edges += _top_edges(model, inputs, strength, source, tgt_layer, nodes, node_score, tidx, classes, count, n_steps,
                            max_batch_size, layouts)
    return _normalised(like.layers, nodes, classes, edges, node_score)


def _strength(like: CausalGraph) -> Callable[[float], float]:
    """How ``like`` ranks an effect: signed for ``alternative="greater"`` (its default), by magnitude for ``"two-sided"``."""
    return abs if like.meta.get("alternative", "greater") == "two-sided" else float


def _top_edges(model: nn.Module, x: Tensor, strength: Callable[[float], float], source: str, tgt_layer: str, nodes: dict[str, list[int]],
               node_score: dict[str, Tensor], tidx: Tensor, classes: list[int], count: int, n_steps: int,
               max_batch_size: int | None, layouts: dict[str, dict[str, Any]]) -> list[tuple[str, str, float]]:
    src = nodes[source]
    if tgt_layer == OUTPUT:
        scored = [(float(node_score[source][tidx == c][:, i].mean()), f"{source}:{i}", f"{OUTPUT}:{c}")
                  for c in classes for i in src]
    else:
        tgt = nodes.get(tgt_layer, [])
        if not tgt:
            return []
        cond = _unit_to_unit(model, x, source, tgt_layer, tgt, n_steps, max_batch_size, layouts)  # [k_tgt, U_src]
        scored = [(float(cond[b, i]), f"{source}:{i}", f"{tgt_layer}:{j}") for b, j in enumerate(tgt) for i in src]
    scored.sort(key=lambda e: (-strength(e[0]), e[1], e[2]))
    return [(s, t, score) for score, s, t in scored[:count]]


def _normalised(layers: Sequence[str], nodes: dict[str, list[int]], classes: list[int],
                edges: list[tuple[str, str, float]], node_score: dict[str, Tensor]) -> CausalGraph:
    top: dict[str, float] = {}
    for _, t, w in edges:
        key = t.rsplit(":", 1)[0]
        top[key] = max(top.get(key, 0.0), abs(w))
    weighted = [(s, t, w / top[t.rsplit(":", 1)[0]] if top[t.rsplit(":", 1)[0]] > 0 else 0.0) for s, t, w in edges]
    stats: dict[str, dict[str, Any]] = {f"{layer}:{u}": {"effect": float(node_score[layer][:, u].mean())}
                                        for layer in layers for u in nodes[layer]}
    ids = [f"{layer}:{u}" for layer in layers for u in nodes[layer]] + [f"{OUTPUT}:{c}" for c in classes]
    edge_stats = [{"score": w} for _, _, w in edges]
    return CausalGraph(list(layers), ids, weighted, stats, edge_stats, {"method": "LayerConductance"})
