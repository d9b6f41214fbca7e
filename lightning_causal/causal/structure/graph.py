"""Causal explanatory graphs by path interventions (Ahmad et al. 2023; Diallo et al. 2023).

Nodes are the units of the chosen layers whose effect on the explained output is significant and
not negligible next to the strongest unit of their layer, plus the output classes; edges are the
path-specific effects between them (:mod:`~lightning_causal.causal.structure.path_effects`), kept
when significant after a multiple-testing correction over the edge tests of every unit with a path
(nodes or not: the nodes were chosen by a test on the same samples) and not negligible next to the
strongest edge into the same unit. The graph's faithfulness is measured by running it
as a circuit (:mod:`~lightning_causal.causal.structure.faithfulness`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.checks import check_choice, check_float, check_int, check_seed
from lightning_causal.causal.engine.forward import Forward, ForwardArgs, OutputSpec
from lightning_causal.causal.engine.input_noise import float_code_elements, input_noise_sd, varies
from lightning_causal.causal.engine.input_sites import check_site, input_sites
from lightning_causal.causal.engine.layer_constants import constants_verdict, probe_pass
from lightning_causal.causal.engine.linked_samples import check_linked_samples, failed_rows_named
from lightning_causal.causal.engine.module_sites import resolve_module
from lightning_causal.causal.engine.noise import GeneratorWatch, warn_separate_noise
from lightning_causal.causal.engine.probe_warnings import (
    ProbeContentsWarning,
    RepeatedSamplesWarning,
)
from lightning_causal.causal.engine.stacked_rows import rows_alone_checked
from lightning_causal.causal.engine.state import as_tuple, audit_mode, listed_target
from lightning_causal.causal.engine.units import (
    per_layer_layouts,
)
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.structure.faithfulness import circuit_faithfulness
from lightning_causal.causal.structure.graph_context import (
    FxTraces,
    GraphContext,
    ValueSpec,
    check_value_spec,
    unit_layouts,
)
from lightning_causal.causal.structure.graph_data import OUTPUT, CausalGraph, count_stat
from lightning_causal.causal.structure.layer_trace import distinct_samples
from lightning_causal.causal.structure.path_effects import path_effects_from
from lightning_causal.causal.structure.significance import (
    ALTERNATIVES,
    CORRECTIONS,
    Alternative,
    Correction,
    adjust_p_values,
    p_values,
    paired_z,
    shares,
    z_critical,
)

__all__ = ["causal_graph", "graph_stability"]

Inputs = Tensor | tuple[Tensor, ...]

def _copies_of(draw: Tensor) -> Tensor:
    """``[N]``, for the resample ``x[draw]``: each position's first position of the same draw (the same sample: equal
    inputs, target and forward arguments), so that the graph's sweeps run each drawn sample once
    (:func:`~lightning_causal.causal.structure.path_effects.path_effects_from`'s ``copies``)."""
    n = draw.numel()
    _, inverse = torch.unique(draw.cpu(), return_inverse=True)
    first = torch.full((n,), n, dtype=torch.long).scatter_reduce(0, inverse, torch.arange(n), "amin", include_self=True)
    return first[inverse]


@dataclass(frozen=True)
class _Rule:
    top_k: int | None
    alpha: float
    min_share: float
    correction: Correction
    alternative: Alternative

    def passes(self, mean: Tensor, p: Tensor, share: Tensor) -> Tensor:
        direction = mean > 0 if self.alternative == "greater" else mean != 0
        return direction & (p <= self.alpha) & (share >= self.min_share)


def _check_layers(model: nn.Module, layers: Sequence[str]) -> list[str]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, Sequence) or not layers or not all(isinstance(n, str) and n for n in layers):
        raise ValueError(f"Expected argument `layers` to be a non-empty list of module names but got {layers!r}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"Expected argument `layers` to hold distinct module names but got {list(layers)}")
    if OUTPUT in layers:
        raise ValueError(f"Expected argument `layers` not to contain {OUTPUT!r}: that name is reserved for the class nodes")
    for name in layers:
        check_site(model, name)
    return list(layers)


def _check_rule(top_k: Any, alpha: Any, min_share: Any, correction: Any, alternative: Any) -> _Rule:
    return _Rule(check_int("top_k", top_k, minimum=1, none_ok=True),
                 check_float("alpha", alpha, minimum=0.0, maximum=1.0, open_min=True),
                 check_float("min_share", min_share, minimum=0.0, maximum=1.0),
                 check_choice("correction", correction, CORRECTIONS), check_choice("alternative", alternative, ALTERNATIVES))


def _check_constant_layers(forward: Forward, xs: tuple[Tensor, ...], layers: Sequence[str]) -> None:
    """Refuse a forward that differentiates its inputs through a chosen layer without autograd's error: the graph's paths
    clamp layers to values cached from the probe, constants, and ``torch.func.grad`` (forces ``(dH/dp, -dH/dq)`` of a
    Hamiltonian network) raises nothing there but returns a derivative of 0 through them, so every path effect would be
    that of the clamps. The prefix cache's check, run on every graph
    (:func:`~lightning_causal.causal.engine.layer_constants.constants_verdict`: the probe's pass with the layers'
    outputs, element 0 of a tuple too, given back as constants equal to themselves must give the output as it is; the
    prefix cache runs it only where the output records autograd, which ``torch.func.grad``'s does not). A forward that fails so (``torch.autograd.grad``: "appears to not have been used in the graph") is left to
    the graph's passes, whose error names it; one that draws noise is not judged. Every layer at once first: where that
    leaves the output as it is (an ordinary model), two passes of the probe are all the check costs; each layer alone
    only where it does not."""
    modules = [resolve_module(forward.model, layer) for layer in layers]
    try:
        clean = probe_pass(forward, xs)
        if not constants_verdict(forward, xs, modules, clean).differentiates:
            return
    except Exception:  # noqa: BLE001 - a forward that fails without constants: the graph's passes name its error
        return
    for layer, module in zip(layers, modules):  # "changes" or "fails" (torch.autograd.grad): each layer alone
        try:
            changes = constants_verdict(forward, xs, [module], clean).kind == "changes"
        except Exception:  # noqa: BLE001 - the graph's passes name the model's error
            continue
        if changes:
            raise ValueError(
                f"Expected the model's output to stay as it is when layer {layer!r} gives back its own values as constants, "
                "but it changes: the forward differentiates its inputs through the layer (torch.func.grad/jacrev: forces "
                "-dE/dx, a Hamiltonian network's (dH/dp, -dH/dq)), and the causal graph's paths clamp layers to values "
                "cached from the probe, constants through which such a forward finds a derivative of 0, so every path "
                "effect would be that of the clamps. Use unit_effects/UnitImportanceAudit (method='exact'), which sets "
                "units on the layer's live output, or input effects")


def _select_nodes(e: Tensor, tidx: Tensor, rule: _Rule) -> tuple[list[int], dict[str, Tensor], int]:
    """Units that pass the node test for at least one explained class, strongest (mean effect over
    all samples) first, at most ``top_k``; every unit's statistics, the test's from its deciding
    class (the passing class where its share is largest); and, under the one-sided test
    (``alternative="greater"``), how many units it leaves out for every class that pass it two-sided with a
    negative mean for one (units that lower the explained output as surely as the kept ones raise it; 0 under
    ``"two-sided"``, which keeps them)."""
    classes = sorted(set(tidx.tolist()))
    tests = []
    lowering = torch.zeros(e.shape[0], dtype=torch.bool, device=e.device)
    for c in classes:
        rows = tidx == c
        mean, se, z = paired_z(e[:, rows])
        p = p_values(z, rule.alternative, df=int(rows.sum()) - 1)  # Student's t, n_c - 1 degrees of freedom
        share = shares(mean, torch.zeros_like(mean, dtype=torch.long), rule.alternative)
        keep = rule.passes(mean, p, share)
        tests.append(torch.stack([t.double() for t in (mean, se, z, p, share, keep)]))
        if rule.alternative == "greater":  # the same test two-sided, on the same z
            both = shares(mean, torch.zeros_like(mean, dtype=torch.long), "two-sided")
            lowering |= (mean < 0) & (p_values(z, "two-sided", df=int(rows.sum()) - 1) <= rule.alpha) & (both >= rule.min_share)
    stacked = torch.stack(tests)  # [C, 6, U]
    keep = stacked[:, 5] > 0
    best = torch.where(keep, stacked[:, 4], stacked[:, 4] - 2.0).argmax(0)  # passing classes first
    mean, se, z, p, share = (stacked[best, k, torch.arange(e.shape[0])] for k in range(5))
    overall = e.mean(-1)
    strength = overall if rule.alternative == "greater" else overall.abs()
    order = sorted((u for u in range(e.shape[0]) if keep[:, u].any()), key=lambda u: (-float(strength[u]), u))
    stats = {"effect": overall, "importance": e.abs().mean(-1), "class": torch.as_tensor(classes, device=best.device)[best],
             "class_effect": mean, "se": se, "z": z, "p_value": p, "share": share}
    return order[: rule.top_k] if rule.top_k is not None else order, stats, int((lowering & ~keep.any(0)).sum())


def _warn_single_sample_classes(tidx: Tensor) -> None:
    """Warn when every explained class has one sample of the probe (a probe of one sample too): the node
    test is per class, a paired t-test has no standard error from one sample, so no unit can pass it and
    the graph comes out empty whatever the model does."""
    _, counts = torch.unique(tidx.flatten(), return_counts=True)
    if tidx.numel() == 1:  # a probe of one sample (a batch dimension kept on one example): the same empty graph
        warnings.warn(
            "Each of the 1 explained classes has one sample of the probe of 1: a graph of one sample has no unit nodes (the "
            "node test is a paired t-test, which needs at least two samples of an explained class); pass several samples",
            ProbeContentsWarning, stacklevel=outside_package())
    elif int(counts.max()) < 2:
        warnings.warn(
            f"Each of the {counts.numel()} explained classes has one sample of the probe of {tidx.numel()}: the node test is "
            "a paired t-test per explained class, which one sample cannot pass (no standard error), so the graph has no "
            "nodes. Use a larger probe (several samples per class) or one explained class for all samples "
            "(`target=k`)", ProbeContentsWarning, stacklevel=outside_package())


def _warn_repeated_samples(xs: tuple[Tensor, ...]) -> None:
    """Warn when a tenth or more of the probe's samples are copies of others (equal in every input
    tensor): the node and edge tests take the ``n`` samples as independent draws, and a sample
    repeated ``k`` times counts ``k`` times, so the standard errors shrink (for a probe repeated
    twice, by about ``sqrt(2)``) and units pass that the distinct samples would not support. A few
    copies, as real data has (one in Iris's 150 rows), change the z-scores by a few percent: no
    warning."""
    n, distinct = xs[0].shape[0], distinct_samples(xs)
    if n - distinct >= 0.1 * n:
        warnings.warn(
            f"{n - distinct} of the probe's {n} samples repeat others ({distinct} distinct): the node and edge tests "
            "take every sample as an independent draw, so repeats shrink the standard errors and the p-values (a probe "
            "repeated twice: z about sqrt(2) times too large). Pass distinct samples, e.g. `torch.unique(x, dim=0)`",
            RepeatedSamplesWarning, stacklevel=outside_package())


def _round_off(d: Tensor, tol: float) -> Tensor:
    return torch.where(d.abs() <= tol, torch.zeros_like(d), d)


def _block(d: Tensor, exists: Tensor, src: list[int], source: str, targets: list[str], tol: float,
           alternative: str) -> tuple[list[tuple[str, str]], Tensor, Tensor, Tensor, int, Tensor, Tensor]:
    """The tests of the edges from *every* unit of the source layer with a path, given the per-sample
    path effects ``d [U, k, n]`` into ``k`` targets: ``(pairs, mean, se, z, samples, strongest, from_node)``,
    ``strongest`` being the largest mean effect into the pair's target over all source units and
    ``from_node`` whether the pair's source is one of the nodes ``src`` (the candidates). The tests
    of the units that are not nodes belong to the multiple-testing family: the nodes were chosen by
    a test on the same samples (for the last layer's edges into ``output:c``, the very same test), so a
    correction over the nodes' edges alone corrects nothing (10 null units: Holm kept an edge in
    35% of graphs)."""
    d = _round_off(d, tol)
    mean, se, z = paired_z(d)
    live = exists & (d != 0).any(-1)
    strength = mean.clamp_min(0.0) if alternative == "greater" else mean.abs()
    strongest = torch.where(live, strength, torch.zeros_like(strength)).amax(0)  # [k]
    rows, cols = live.nonzero(as_tuple=True)
    pairs = [(f"{source}:{i}", targets[j]) for i, j in zip(rows.tolist(), cols.tolist())]
    from_node = torch.isin(rows, torch.as_tensor(src, dtype=rows.dtype, device=rows.device))
    return pairs, mean[live], se[live], z[live], int(d.shape[-1]), strongest[cols], from_node


def _sweep(ctx: GraphContext, a: int, nodes: dict[str, list[int]], base: Tensor,
           copies: Tensor | None = None) -> tuple[Tensor, dict, dict, Tensor | None]:
    """Unit effects of every unit of chosen layer ``a`` and the path effects of every unit into the
    nodes of later layers: ``(effects [U, N], hidden, exists, output effects [U, N] or None)``.
    The paths that avoid the next chosen layer are measured (a clamped sweep) only where the model
    has such paths; elsewhere they are exactly 0 and no candidates (``None``). ``copies``: as
    :func:`~lightning_causal.causal.structure.path_effects.path_effects_from`'s."""
    layer, later = ctx.layers[a], ctx.layers[a + 1:]
    units = list(range(ctx.acts[layer].shape[1]))
    targets = {later[0]: nodes[later[0]]} if later and nodes[later[0]] else {}
    sweep = path_effects_from(ctx, layer, units, targets, base=base, clamp=False, copies=copies)
    effects = _round_off(sweep.output, ctx.output_tolerance())
    if not later:
        return effects, {}, {}, effects
    if not ctx.bypassed(layer, later[0]):
        return effects, sweep.hidden, sweep.exists, None
    far = {t: nodes[t] for t in later[1:] if nodes[t]}
    clamped = path_effects_from(ctx, layer, units, far, base=base, clamp=True, copies=copies)
    return effects, {**sweep.hidden, **clamped.hidden}, {**sweep.exists, **clamped.exists}, clamped.output


def _candidates(ctx: GraphContext, nodes: dict[str, list[int]], layer: str, hidden: dict, exists: dict,
                output: Tensor | None, alternative: str) -> list[tuple]:
    """Candidate edges from the nodes ``src`` of ``layer`` in blocks (see :func:`_block`): every
    (node, later node) pair with a path, and every node into each explained class (samples of that
    class only). The path effects of every unit of the layer are given, so that an edge's share is
    relative to the strongest path into its target from any unit, in the graph or not."""
    tol, src = ctx.output_tolerance(), nodes[layer]
    blocks = [_block(hidden[t], exists[t], src, layer, [f"{t}:{j}" for j in nodes[t]], tol, alternative) for t in hidden]
    if output is not None:
        always = torch.ones(output.shape[0], 1, dtype=torch.bool, device=output.device)
        for c in sorted(set(ctx.tidx.tolist())):
            blocks.append(_block(output[:, ctx.tidx == c].unsqueeze(1), always, src, layer, [f"{OUTPUT}:{c}"], tol, alternative))
    return blocks


def _test_edges(blocks: list, rule: _Rule) -> tuple[list[tuple[str, str]], list[dict[str, float]], int, int]:
    """Kept edges and their statistics; the number of candidates (edges from nodes) and of tests in the
    correction's family (edges from every unit with a path, :func:`_block`)."""
    pairs = [pair for block in blocks for pair in block[0]]
    if not pairs:
        return [], [], 0, 0
    mean, se, z, strongest = (torch.cat([block[k].reshape(-1).double() for block in blocks]) for k in (1, 2, 3, 5))
    from_node = torch.cat([block[6].reshape(-1) for block in blocks])
    samples = [block[4] for block in blocks for _ in block[0]]
    p = p_values(z, rule.alternative, df=torch.tensor(samples, dtype=torch.float64) - 1)  # Student's t, n - 1 degrees of freedom
    p_adj = adjust_p_values(p, rule.correction)
    strength = mean.clamp_min(0.0) if rule.alternative == "greater" else mean.abs()
    share = torch.where(strongest > 0, strength / strongest.clamp_min(1e-300), torch.zeros_like(strength))
    keep = rule.passes(mean, p_adj, share) & from_node
    stats = [{"effect": float(mean[e]), "se": float(se[e]), "z": float(z[e]), "p_value": float(p[e]),
              "p_adjusted": float(p_adj[e]), "share": float(share[e]), "samples": int(samples[e])}
             for e in keep.nonzero().flatten().tolist()]
    return [pairs[e] for e in keep.nonzero().flatten().tolist()], stats, int(from_node.sum()), len(pairs)


def _assemble(ctx: GraphContext, nodes: dict[str, list[int]], node_stats: dict[str, dict[str, Tensor]],
              edges: list[tuple[str, str]], edge_stats: list[dict[str, float]]) -> CausalGraph:
    ids, stats = [], {}
    for layer in ctx.layers:
        for u in nodes[layer]:
            ids.append(f"{layer}:{u}")
            stats[ids[-1]] = {k: count_stat(k, v[u]) for k, v in node_stats[layer].items()}
    for c in sorted(set(ctx.tidx.tolist())):
        rows = ctx.tidx == c
        ids.append(f"{OUTPUT}:{c}")
        stats[ids[-1]] = {"samples": int(rows.sum()), "logit": float(ctx.f0[rows].mean())}
    top: dict[str, float] = {}
    for (_, t), st in zip(edges, edge_stats):
        layer = t.rsplit(":", 1)[0]
        top[layer] = max(top.get(layer, 0.0), abs(st["effect"]))
    weighted = [(s, t, st["effect"] / top[t.rsplit(":", 1)[0]]) for (s, t), st in zip(edges, edge_stats)]
    return CausalGraph(list(ctx.layers), ids, weighted, stats, edge_stats, {})


def causal_graph(
    model: nn.Module,
    inputs: Inputs,
    layers: Sequence[str],
    top_k: int | None = 8,
    *,
    target: int | Tensor | None = None,
    alpha: float = 0.05,
    min_share: float = 0.05,
    correction: Correction = "bh",
    alternative: Alternative = "greater",
    baseline: ValueSpec = "zero",
    ablation: ValueSpec = "mean",
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | Mapping[str, int] | None = None,
    num_heads: int | Mapping[str, int] | None = None,
) -> CausalGraph:
    """Causal explanatory graph of ``model`` on ``inputs`` by path interventions.

    **Nodes.** Unit ``u`` of a chosen layer has the per-sample effect
    ``e_u(x) = f_t(x) - f_t(x | do(h_u := b))`` (``b``: ``baseline``). It is a node when, over the
    ``n`` samples explained as some class ``c``, its mean effect is significant by the paired t-test,
    ``z = mean(e_u) / (sd(e_u)/√n)``, ``p = P(T_{n-1} >= z) <= alpha`` (Student's t with ``n - 1``
    degrees of freedom, one-sided: 2.13 standard errors at ``alpha = 0.05`` for ``n = 5``, tending to
    the 1.645 of Ahmad et al. 2023's z-test for large ``n``, which rejects a null unit 8.8% of the
    time at ``n = 5``) and ``mean(e_u) >= min_share · max_v mean(e_v)``
    over its layer (for that class). At most ``top_k`` nodes per layer are kept (the largest mean
    effect over all samples). Each explained class ``c`` is a node ``output:c``.

    **Edges.** Every pair (node ``i`` of ``L_a``, node ``j`` of a later ``L_c``) with a path is a
    candidate, with the path-specific effect ``p_ij(x)`` (only ``j`` receives the value it takes
    under ``do(h_i := b)``; see :mod:`~lightning_causal.causal.structure.path_effects`), and so is
    (node ``i``, ``output:c``) over the samples explained as ``c``. An edge is kept when its
    p-value, adjusted (``correction``: Benjamini-Hochberg or Holm) over the same tests of every unit
    of the source layer with a path, node or not (``meta["tests"]``: the nodes were chosen by tests
    on the same samples, so the nodes' edges alone are not the family), is
    ``<= alpha`` and its mean effect is ``>= min_share`` of the strongest path into the same target
    node from any unit of the source layer, a node or not (the p-values, as the nodes', of Student's t with ``n - 1`` degrees of freedom for the
    ``n`` samples of the test). The edge weight is the mean path effect divided by the largest kept one into the
    same layer.

    **Faithfulness** (``meta["faithfulness"]``): the graph run as a circuit, every unit and path of
    the chosen layers that is not in the graph at its ``ablation`` value:
    ``(E f_t(graph) - E f_t(∅)) / (E f_t(x) - E f_t(∅))``
    (:func:`~lightning_causal.causal.structure.faithfulness.graph_faithfulness`).

    Args:
        model: returns ``[N, outputs]`` (after ``output=``): class logits, or one column for a regression.
        inputs: a tensor ``[N, ...]`` or a tuple of tensors.
        layers: module names in forward order, each run once; units on dimension 1 of the output
            (``[N, units, ...]``) unless ``unit_dim``/``num_heads`` say otherwise.
        top_k: at most this many nodes per layer (``None``: no cap).
        target: class index, per-sample indices ``[N]`` or ``None`` (predicted class).
        alpha: significance level of the node and edge tests (``1.0`` keeps every effect in the
            tested direction that reaches ``min_share``). A class explained by a single sample has
            ``z = 0`` (no spread to test): a graph of one input has no units unless ``alpha=1.0``.
        min_share: smallest share of the strongest effect of its layer (nodes) or into its target
            unit (edges), in ``[0, 1]``.
        correction: ``"bh"`` (false discovery rate), ``"holm"`` (family-wise error) or ``"none"``.
        alternative: ``"greater"`` (effects that support the explained output) or ``"two-sided"``
            (inhibiting units and paths too, ``p = P(|T_{n-1}| >= |z|)``; a regression output
            has no decided direction, so ``"two-sided"`` is the natural test there).
        baseline: the intervention value ``b``: ``"zero"``, ``"mean"`` (probe mean) or a number.
        ablation: the value of the units and paths outside the graph in the faithfulness run. With
            padding in ``additional_forward_args`` (a zero ``attention_mask``, steps past
            ``lengths``) the ``"mean"`` of an output ``[N, T, ...]`` counts at each position only
            the samples whose position is real
            (:func:`~lightning_causal.causal.structure.graph_context.layer_values`).
        max_batch_size: rows per forward pass.
        output: which tensor of the model's return value to explain, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        additional_forward_args: extra forward arguments, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        unit_dim: the dimension that indexes each layer's units, for all layers or per layer (a
            mapping layer -> value), as in :func:`~lightning_causal.causal.effects.unit_effects.unit_effects`:
            ``unit_dim=-1`` for the neurons of ``[N, T, D]`` hidden states. The default (dimension 1)
            is refused on layers whose features are last.
        num_heads: split each layer's unit dimension into heads, for all layers or per layer (a
            mapping layer -> value), as in :func:`~lightning_causal.causal.effects.unit_effects.unit_effects`:
            ``num_heads=H`` for the heads of ``[N, T, H * d]`` self-attention outputs (nodes across
            a transformer's residual stream).

    Returns:
        :class:`CausalGraph` with every kept node's and edge's statistics.

    Raises:
        ValueError: unknown, repeated or misordered layers, bad option values, or a model that
            does not return ``[N, outputs]``.

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.eye(2)); _ = model[0].bias.zero_()
        ...     _ = model[2].weight.copy_(torch.tensor([[2.0, 0.001], [0.0, 0.5]])); _ = model[2].bias.zero_()
        >>> x = torch.rand(16, 2, generator=torch.Generator().manual_seed(0)) + 0.5
        >>> g = causal_graph(model, x, ["1"], target=0, ablation="zero")  # unit 1 (weight 0.001) is a leak
        >>> g.edges, round(g.meta["faithfulness"], 3), round(g.edge_stats[0]["z"], 1)
        ([('1:0', 'output:0', 1.0)], 0.999, 14.9)
    """
    return _graph(model, inputs, layers, top_k, target=target, alpha=alpha, min_share=min_share,
                  correction=correction, alternative=alternative, baseline=baseline, ablation=ablation,
                  max_batch_size=max_batch_size, output=output, additional_forward_args=additional_forward_args,
                  unit_dim=unit_dim, num_heads=num_heads)


def _graph(
    model: nn.Module,
    inputs: Inputs,
    layers: Sequence[str],
    top_k: int | None = 8,
    *,
    copies: Tensor | None = None,
    traces: FxTraces | None = None,
    target: int | Tensor | None = None,
    alpha: float = 0.05,
    min_share: float = 0.05,
    correction: Correction = "bh",
    alternative: Alternative = "greater",
    baseline: ValueSpec = "zero",
    ablation: ValueSpec = "mean",
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | Mapping[str, int] | None = None,
    num_heads: int | Mapping[str, int] | None = None,
) -> CausalGraph:
    """:func:`causal_graph`, with what :func:`graph_stability` knows of its graphs: ``copies``, a bootstrap resample's
    repeats (:func:`_copies_of`: each drawn sample swept once), and ``traces``, the torch.fx traces its graphs share
    (:class:`~lightning_causal.causal.structure.graph_context.FxTraces`)."""
    layers = _check_layers(model, layers)
    rule = _check_rule(top_k, alpha, min_share, correction, alternative)
    baseline, ablation = check_value_spec("baseline", baseline), check_value_spec("ablation", ablation)
    dims, heads = per_layer_layouts(unit_dim, num_heads, layers)
    xs = as_tuple(inputs)
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=xs[0].shape[0], as_matrix=True)
    with audit_mode(forward.model), rows_alone_checked("causal_graph", model=forward.model), input_sites(forward.model, layers):  # "<module>:input" sites exist for the call
        # the nodes of one graph as samples: refused from passes of every row, before the passes of fewer rows below
        check_linked_samples(forward.model, xs, "A causal graph", output=output, additional_forward_args=additional_forward_args)
        _check_constant_layers(forward, xs, layers)
        # a model that reads its whole batch (prototypes from its first rows) fails in a pass of fewer rows: named
        with failed_rows_named(forward, xs, "A causal graph"), GeneratorWatch() as clean_pass:  # no pass of its own
            named: dict[str, str] = {}  # what the figure calls the units of unit_dim off dimension 1, where not neurons
            layouts = unit_layouts(forward, xs, layers, dims, heads, named)
            ctx = GraphContext.build(forward, xs, layers, target, max_batch_size=max_batch_size, layouts=layouts,
                                     traces=traces)
        ctx.noisy = warn_separate_noise(forward, xs, "causal_graph", drew=clean_pass.moved)
        _warn_single_sample_classes(ctx.tidx)
        _warn_repeated_samples(xs)
        nodes: dict[str, list[int]] = {}
        node_stats: dict[str, dict[str, Tensor]] = {}
        blocks: dict[str, list[tuple]] = {}
        lowering: dict[str, int] = {}  # units the one-sided test leaves out that lower the output (two-sided negatives)
        if copies is not None and copies.numel() != ctx.n:
            raise ValueError(f"Expected `copies` to name one sample per probe sample, {ctx.n}, but got {copies.numel()}")
        for a in reversed(range(len(layers))):  # the nodes of later layers are the targets of a sweep
            layer = layers[a]
            effects, hidden, exists, out = _sweep(ctx, a, nodes, ctx.values(layer, baseline, "baseline"), copies)
            nodes[layer], node_stats[layer], lowering[layer] = _select_nodes(effects, ctx.tidx, rule)
            blocks[layer] = _candidates(ctx, nodes, layer, hidden, exists, out, rule.alternative) if nodes[layer] else []
        edges, edge_stats, candidates, family = _test_edges([b for layer in layers for b in blocks[layer]], rule)
        graph = _assemble(ctx, nodes, node_stats, edges, edge_stats)
        ablated = {layer: ctx.values(layer, ablation) for layer in layers}
        graph.meta.update(circuit_faithfulness(ctx, graph, ablated))
    graph.meta.update(candidates=candidates, tests=family, top_k=rule.top_k, alpha=rule.alpha, min_share=rule.min_share,
                      correction=rule.correction, alternative=rule.alternative,
                      lowering_units={layer: lowering[layer] for layer in layers if lowering[layer]},  # forward order
                      z_critical=z_critical(rule.alpha, rule.alternative), baseline=baseline,
                      ablation=ablation, samples=ctx.n,
                      units={layer: int(ctx.acts[layer].shape[1]) for layer in layers},  # which graphs' nodes are the same units
                      outputs=ctx.outputs,
                      unit_layouts={layer: {"unit_dim": dims[layer], "num_heads": heads[layer]}  # as given, for a graph of the same units
                                    for layer in layers if dims[layer] is not None or heads[layer] is not None})
    if named:  # positions after a convolution, a spectrum's modes: the figure's column titles
        graph.meta["unit_kinds"] = named
    return graph


def _jitter(xs: tuple[Tensor, ...], noise: float, gen: torch.Generator,
            codes: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
    """``x + input_noise_sd(x, noise) · ε``: ``noise`` standard deviations of each input element over the samples
    (:func:`~lightning_causal.causal.engine.input_noise.input_noise_sd`, the rule of every stability measure), none on
    the category codes an embedding reads cast (``codes``)."""
    return tuple(x + input_noise_sd(x, noise, c) * torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
                 if x.is_floating_point() else x for x, c in zip(xs, codes))


def graph_stability(
    model: nn.Module,
    inputs: Inputs,
    layers: Sequence[str],
    top_k: int | None = 8,
    *,
    resamples: int = 2,
    noise: float = 0.05,
    seed: int = 0,
    reference: CausalGraph | None = None,
    codes: tuple[Tensor | None, ...] | None = None,
    **options: Any,
) -> dict[str, float]:
    """Stability of the graph's edge set (the central claim of Ahmad et al. 2023).

    ``resample_jaccard``: mean Jaccard overlap ``|E ∩ E'| / |E ∪ E'|`` of the edges of ``reference``
    (default: the graph on ``inputs``) with the graphs built on ``resamples`` bootstrap resamples
    of the probe; ``noise_jaccard``: the same on ``x + noise · sd(x) · ε`` with Gaussian ``ε`` and ``sd(x)``
    the standard deviation of each input element (a column of a table, a pixel) over the probe's samples, 0 for
    an element constant over them (:func:`~lightning_causal.causal.engine.input_noise.input_noise_sd`, the rule of
    every stability measure; on the floating-point inputs; NaN, and no noisy graph built, when no element of them
    varies over the samples: token ids, which have no Gaussian neighbourhood, or a probe of one sample, whose noisy
    graph would be the graph itself). Category codes kept in a float column and cast inside the model
    (``nn.Embedding(x[:, j].long())``) take no noise: a nominal code has no Gaussian neighbourhood, and the truncated
    noisy value is another category (found on a clean pass, :func:`~lightning_causal.causal.engine.input_noise.float_code_elements`;
    NaN too where only such codes vary). All randomness comes from a private generator seeded by ``seed``; the
    resamples are drawn first, so they do not depend on how many inputs are jittered (``model(image,
    tab)`` resamples the same samples whether ``tab`` is an input or a forward argument). A resample's graph sweeps
    each drawn sample once and copies its effects to its repeats (about a third of a resample's samples; not for a
    model that draws noise): the graph is the one :func:`causal_graph` gives on the resampled probe, number for number.

    Args:
        model: the model, as in :func:`causal_graph`.
        inputs: a tensor ``[N, ...]`` or a tuple of tensors, as in :func:`causal_graph`.
        layers: module names in forward order, as in :func:`causal_graph`.
        top_k: at most this many nodes per layer (``None``: no cap), as in :func:`causal_graph`.
        resamples: bootstrap resamples and noisy copies (each one graph).
        noise: input noise in standard deviations of each input element over the probe's samples.
        seed: seed of the private generator.
        reference: the graph to compare with (saves building it again).
        codes: per input, bool ``[1, ...]`` of the elements that take no noise (``None`` entries: none), as
            :func:`~lightning_causal.causal.engine.input_noise.float_code_elements` finds them (the default, one clean
            pass of up to 256 rows for a model with an embedding).
        **options: keyword options of :func:`causal_graph` (``target``, ``alpha``, ``min_share``,
            ``output``, ``additional_forward_args``, ...); per-sample ``target`` and forward
            arguments follow the resampled rows (a target as a tensor or a list of ints).

    Examples:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
        >>> sorted(graph_stability(model, x, ["1"], top_k=2, resamples=1))
        ['noise_jaccard', 'resample_jaccard']
    """
    check_int("resamples", resamples, minimum=1)
    check_seed(seed)
    check_float("noise", noise, minimum=0.0)
    xs = as_tuple(inputs)
    if codes is not None and not (isinstance(codes, tuple) and len(codes) == len(xs) and all(
            c is None or isinstance(c, Tensor) and c.dtype == torch.bool and c.shape == (1, *x.shape[1:])
            for c, x in zip(codes, xs))):
        raise ValueError(f"Expected argument `codes` to be None or a tuple of {len(xs)} entries, one per input, each None "
                         f"or a bool tensor [1, ...] shaped like one sample of its input, but got {codes!r:.120}")
    traces = FxTraces()  # the model does not change between these graphs: each suffix traced once, not once a graph
    ref = reference if reference is not None else _graph(model, xs, layers, top_k, traces=traces, **options)
    gen = torch.Generator().manual_seed(seed)
    n = xs[0].shape[0]
    # a listed target (Captum's list of ints) follows the resampled rows as a tensor does
    target, fargs = listed_target(options.pop("target", None)), options.pop("additional_forward_args", None)
    fargs = fargs if isinstance(fargs, ForwardArgs) else ForwardArgs(fargs, n)
    per_sample_target = isinstance(target, Tensor) and target.numel() > 1
    boot, noisy = [], []
    if codes is None:  # category codes in float columns: no Gaussian noise (found on the first rows' clean pass)
        codes = float_code_elements(Forward(model, output=options.get("output"), additional_forward_args=fargs, num_samples=n), xs)
    # no spread over the samples (token ids, one sample, only codes vary): no noise to scale
    jitter = any(varies(x) and bool((input_noise_sd(x, 1.0, c) > 0).any()) for x, c in zip(xs, codes))
    # every resample drawn before any noise: the noise draws (one per floating point input) do not move them, so a
    # model(image, tab) probe resamples the same samples whether tab is an input or a forward argument
    draws = [torch.randint(n, (n,), generator=gen) for _ in range(resamples)]
    for idx in draws:
        with warnings.catch_warnings():  # a bootstrap resample repeats samples by design: not the user's probe
            warnings.simplefilter("ignore", RepeatedSamplesWarning)
            # a sample drawn k times is swept once, its effects copied (the same numbers)
            g = _graph(model, tuple(x[idx.to(x.device)] for x in xs), layers, top_k, copies=_copies_of(idx), traces=traces,
                       target=target[idx.to(target.device)] if per_sample_target else target,
                       additional_forward_args=fargs.subset(idx), **options)
        boot.append(ref.jaccard(g))
        if jitter:
            g = _graph(model, _jitter(xs, noise, gen, codes), layers, top_k, traces=traces, target=target,
                       additional_forward_args=fargs, **options)
            noisy.append(ref.jaccard(g))
    return {"resample_jaccard": sum(boot) / len(boot), "noise_jaccard": sum(noisy) / len(noisy) if noisy else math.nan}
