"""Faithfulness of a causal graph run as a circuit: the model with every unit and every path of the
chosen layers that is not in the graph set to its baseline (mean ablation by default), as circuit
work measures it (Wang et al. 2023, mean ablation; Conmy et al. 2023).

Circuit values, layer by layer (``m`` = the ablation value, ``E`` = the graph's edges):

- a unit of ``L_1`` in the graph keeps its clean value; every unit not in the graph is ``m``;
- a unit ``j`` of a later layer ``L_c`` in the graph takes the value computed from the earlier
  chosen layers where each ``L_a`` (``a < c``) is replaced by its circuit values on the sources of
  ``j``'s edges and by ``m`` elsewhere: ``c_j = h_j(L_a := E_{·→j} ? c_a : m_a  for all a < c)``;
- the output ``f_t(graph)`` is computed the same way from the sources of the edges into
  ``output:t``.

Because an edge ``i → j`` of non-consecutive layers stands for the paths that avoid the layers in
between (:mod:`~lightning_causal.causal.structure.path_effects`), replacing every earlier layer at
once removes exactly the paths that are not in the graph. The faithfulness is

.. math:: F = \\frac{E[f_t(\\text{graph})] - E[f_t(\\varnothing)]}{E[f_t(x)] - E[f_t(\\varnothing)]}

with ``∅`` the empty graph (every unit of the chosen layers at ``m``): 1 for the full graph,
0 for the empty one, and it changes when an edge that carries an effect is removed. With mean
ablation the denominator is the sample-specific part of the explained output; for one fixed target
class and a read-out that is linear in the chosen layers the probe means cancel and the ratio is
undefined (NaN): use ``ablation="zero"`` there. With the predicted class as target (the default)
the explained logit is above its ablated value on average.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import map_rows
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.input_sites import input_sites
from lightning_causal.causal.engine.noise import GeneratorWatch, warn_separate_noise
from lightning_causal.causal.engine.state import as_tuple, audit_mode
from lightning_causal.causal.engine.units import per_layer_layouts
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.structure.graph_context import (
    GraphContext,
    Hook,
    ValueSpec,
    check_value_spec,
    unit_layouts,
)
from lightning_causal.causal.structure.graph_data import OUTPUT, CausalGraph

__all__ = ["graph_faithfulness", "circuit_faithfulness"]


def _split(node: str) -> tuple[str, int]:
    layer, unit = node.rsplit(":", 1)
    return layer, int(unit)


def _in_masks(graph: CausalGraph, targets: Sequence[str], source: str, units: int, device: torch.device) -> Tensor:
    """``[len(targets), units]``: which units of ``source`` have an edge into each target node."""
    index = {t: r for r, t in enumerate(targets)}
    mask = torch.zeros(len(targets), units, dtype=torch.bool, device=device)
    for s, t, _ in graph.edges:
        layer, unit = _split(s)
        if layer == source and t in index and unit < units:
            mask[index[t], unit] = True
    return mask


def _keep(values: Tensor, ablated: Tensor, mask: Tensor) -> Hook:
    """Hook: rows keep ``values`` on the units of ``mask [R, U]`` and take ``ablated`` elsewhere."""
    view = mask.view(*mask.shape, *([1] * (values.dim() - 2)))
    return lambda _h: torch.where(view, values, ablated)


def circuit_faithfulness(ctx: GraphContext, graph: CausalGraph, ablated: dict[str, Tensor]) -> dict[str, Any]:
    """The circuit run of ``graph`` on the clean pass ``ctx`` with ablation values ``ablated``
    (layer -> ``[1, U, ...]`` or 0-d). Returns ``faithfulness`` and the mean target outputs
    ``logit_full``, ``logit_graph``, ``logit_empty``, and ``logit_full_sd`` (the standard deviation of
    the clean target output over the samples; 0 for one sample).

    Args:
        ctx: the clean pass: the layers' activations and the target outputs of the probe
            (``GraphContext``).
        graph: the graph whose nodes and edges form the circuit.
        ablated: the ablation value of each layer, as above.
    """
    n, device = ctx.n, ctx.f0.device
    nodes = {layer: sorted(u for lay, u in map(_split, graph.nodes) if lay == layer) for layer in ctx.layers}
    circuit: dict[str, Tensor] = {}
    for c, layer in enumerate(ctx.layers):
        h = ctx.acts[layer]
        values = torch.broadcast_to(ablated[layer].to(h.dtype), h.shape).clone()
        units = torch.as_tensor(nodes[layer], dtype=torch.long, device=device)
        if c == 0 or units.numel() == 0:
            values[:, units] = h[:, units]
            circuit[layer] = values
            continue
        ids = [f"{layer}:{u}" for u in nodes[layer]]
        masks = {a: _in_masks(graph, ids, a, ctx.acts[a].shape[1], device) for a in ctx.layers[:c]}

        def evaluate(idx: Tensor, layer: str = layer, units: Tensor = units, masks: dict = masks) -> Tensor:
            j, s = idx // n, idx % n
            hooks = {a: _keep(circuit[a][s], ablated[a], masks[a][j]) for a in masks}
            return ctx.value_at(layer, s, hooks)[torch.arange(idx.numel(), device=device), units[j]]

        got = map_rows(units.numel() * n, ctx.rows(None), evaluate, device).view(units.numel(), n, *h.shape[2:])
        values[:, units] = got.transpose(0, 1).to(h.dtype)
        circuit[layer] = values
    classes = sorted(set(ctx.tidx.tolist()))
    row_class = torch.as_tensor([classes.index(c) for c in ctx.tidx.tolist()], device=device)
    out_masks = {a: _in_masks(graph, [f"{OUTPUT}:{c}" for c in classes], a, ctx.acts[a].shape[1], device)
                 for a in ctx.layers}

    def graph_run(s: Tensor) -> Tensor:
        return ctx.logits(s, {a: _keep(circuit[a][s], ablated[a], out_masks[a][row_class[s]]) for a in ctx.layers})

    def empty_run(s: Tensor) -> Tensor:
        return ctx.logits(s, {a: (lambda _h, v=ablated[a], a=a: torch.broadcast_to(v, (len(s), *ctx.acts[a].shape[1:])))
                              for a in ctx.layers})

    rows = ctx.rows(None)
    f_graph = map_rows(n, rows, graph_run, device)
    f_empty = map_rows(n, rows, empty_run, device)
    full, empty, kept = float(ctx.f0.mean()), float(f_empty.mean()), float(f_graph.mean())
    # a change of the mean output within round-off leaves the ratio undefined (e.g. mean ablation
    # of a linear read-out with one fixed target class: the probe means cancel)
    faith = (kept - empty) / (full - empty) if abs(full - empty) > ctx.output_tolerance() else math.nan
    sd = float(ctx.f0.double().std()) if n > 1 else 0.0  # what a shift full - empty is small against
    return {"faithfulness": faith, "logit_full": full, "logit_graph": kept, "logit_empty": empty, "logit_full_sd": sd}


def graph_faithfulness(
    model: nn.Module,
    inputs: Tensor | tuple[Tensor, ...],
    graph: CausalGraph,
    *,
    target: int | Tensor | None = None,
    ablation: ValueSpec = "mean",
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | Mapping[str, int] | None = None,
    num_heads: int | Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Faithfulness of ``graph`` (built by any method) on ``inputs``, run as a circuit.

    .. math:: F = \\frac{E[f_t(\\text{graph})] - E[f_t(\\varnothing)]}{E[f_t(x)] - E[f_t(\\varnothing)]}

    where *graph* sets every unit and every path of ``graph.layers`` that is not in the graph to
    the ablation value (see the module docstring) and ``∅`` sets every unit of those layers to it.

    Args:
        model: a classifier returning logits ``[N, classes]`` (after ``output=``).
        inputs: a tensor ``[N, ...]`` or a tuple of tensors.
        graph: a :class:`CausalGraph` over layers of ``model`` (node ids ``"<layer>:<unit>"``,
            ``"output:<class>"``).
        target: class index, per-sample indices ``[N]`` or ``None`` (predicted class).
        ablation: ``"mean"`` (the probe mean of each element: mean ablation; with padding, the
            mean over the samples whose position is real), ``"zero"`` or a number.
        max_batch_size: rows per forward pass.
        output: which tensor of the model's return value to explain, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        additional_forward_args: extra forward arguments, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        unit_dim: the dimension that indexes the units of the graph's layers, as in
            :func:`~lightning_causal.causal.structure.graph.causal_graph`; ``None`` (with
            ``num_heads`` also ``None``): the layouts recorded in ``graph.meta["unit_layouts"]`` by
            ``causal_graph`` (channels otherwise).
        num_heads: split the unit dimension into heads, as in
            :func:`~lightning_causal.causal.structure.graph.causal_graph`; ``None`` (with
            ``unit_dim`` also ``None``): the layouts recorded by ``causal_graph``, as for ``unit_dim``.

    Returns:
        ``{"faithfulness", "logit_full", "logit_graph", "logit_empty"}`` (mean target outputs) and
        ``"logit_full_sd"`` (the clean target output's standard deviation over the samples).

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.eye(2)); _ = model[0].bias.zero_()
        ...     _ = model[2].weight.copy_(torch.tensor([[2.0, 1.0], [0.0, 0.0]])); _ = model[2].bias.zero_()
        >>> x = torch.tensor([[1.0, 1.0], [3.0, 1.0]])
        >>> g = CausalGraph(["1"], ["1:0", "output:0"], [("1:0", "output:0", 1.0)])
        >>> graph_faithfulness(model, x, g, target=0, ablation="zero")["faithfulness"]
        0.8
    """
    xs = as_tuple(inputs)
    if not isinstance(graph, CausalGraph):
        raise TypeError(f"Expected argument `graph` to be a CausalGraph but got {type(graph).__name__}")
    ablation = check_value_spec("ablation", ablation)
    layers = list(graph.layers)
    if unit_dim is None and num_heads is None:
        recorded = graph.meta.get("unit_layouts") or {}
        unit_dim = {layer: v["unit_dim"] for layer, v in recorded.items() if v.get("unit_dim") is not None}
        num_heads = {layer: v["num_heads"] for layer, v in recorded.items() if v.get("num_heads") is not None}
    dims, heads = per_layer_layouts(unit_dim, num_heads, layers)
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=xs[0].shape[0], as_matrix=True)
    with audit_mode(forward.model), input_sites(forward.model, layers):  # "<module>:input" sites exist for the call
        with GeneratorWatch() as clean_pass:  # whether the model draws from a global generator: no pass of its own
            layouts = unit_layouts(forward, xs, layers, dims, heads)
            ctx = GraphContext.build(forward, xs, layers, target, max_batch_size=max_batch_size, layouts=layouts)
        warn_separate_noise(forward, xs, "graph_faithfulness", drew=clean_pass.moved)
        _check_graph_units(graph, ctx)
        _warn_unexplained_classes(graph, ctx.tidx)
        ablated = {layer: ctx.values(layer, ablation) for layer in ctx.layers}
        return circuit_faithfulness(ctx, graph, ablated)


def _check_graph_units(graph: CausalGraph, ctx: GraphContext) -> None:
    """Every node of a layer, and every unit an edge leaves or enters, must be one of the layer's units in
    this model (a graph built on another model, or with another ``unit_dim``/``num_heads``: a node beyond
    failed inside an index, an edge beyond was dropped by ``_in_masks``, silently)."""
    named = {*graph.nodes, *(n for s, t, _ in graph.edges for n in (s, t))}
    for layer in ctx.layers:
        width = int(ctx.acts[layer].shape[1])
        units = sorted({u for lay, u in map(_split, named) if lay == layer})
        if units and units[-1] >= width:
            bad = [u for u in units if u >= width]
            raise ValueError(f"Expected argument `graph` to hold units 0 to {width - 1} of layer {layer!r} ({width} units in this "
                             f"model) but got {[f'{layer}:{u}' for u in bad[:6]]}: was the graph built on another model, or with "
                             "another `unit_dim`/`num_heads`?")


def _warn_unexplained_classes(graph: CausalGraph, tidx: Tensor) -> None:
    """Warn when samples are explained as classes without an ``output:<class>`` node in ``graph``:
    nothing of the graph reaches their output, so they count as the empty circuit (F pulled to 0);
    a graph built with ``target=c`` but run with the predicted classes, say."""
    explained = {int(n.split(":", 1)[1]) for n in graph.nodes if n.startswith(f"{OUTPUT}:") and n.split(":", 1)[1].isdigit()}
    counts = torch.bincount(tidx.flatten().cpu())
    missing = [c for c in counts.nonzero().flatten().tolist() if c not in explained]
    if explained and missing:
        warnings.warn(
            f"{sum(int(counts[c]) for c in missing)} of {tidx.numel()} samples are explained as classes {missing}, which "
            f"have no output node in the graph (it explains {sorted(explained)}): they run as the empty circuit. Pass "
            "`target=` as when the graph was built", UserWarning, stacklevel=outside_package(),
        )
