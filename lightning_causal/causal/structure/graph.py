"""Causal explanatory graphs by path interventions (Ahmad et al. 2023; Diallo et al. 2023).

Nodes are the ``top_k`` units of each chosen layer (ranked by unit effect) plus the output
classes; an edge ``i -> j`` between consecutive chosen layers weighs how much zeroing unit ``i``
moves unit ``j``, an edge into an output class is the unit effect on that class. Every edge
passes a one-sided significance test over the probe samples. The per-layer sweep (one unit
zeroed per batch copy) is shared by the node ranking and the edges, so a graph costs what
:func:`~lightning_causal.causal.effects.input_effects.unit_effects` costs on the same layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.interventions import Zero, capture, intervene, resolve_module
from lightning_causal.causal.engine.state import as_tuple, audit_mode, gather_target, resolve_target
from lightning_causal.causal.engine.suffix import suffix_module
from lightning_causal.causal.structure.graph_data import OUTPUT, CausalGraph, _num

__all__ = ["causal_graph", "graph_stability"]

Inputs = Tensor | tuple[Tensor, ...]


def _zero_rows(h: Tensor, units: Tensor) -> Tensor:
    """``h`` with unit ``units[r]`` of row ``r`` set to 0."""
    onehot = torch.zeros(h.shape[0], h.shape[1], dtype=torch.bool, device=h.device)
    onehot[torch.arange(h.shape[0], device=h.device), units] = True
    return h.masked_fill(onehot.view(*onehot.shape, *([1] * (h.dim() - 2))), 0.0)


def _unit_change(clean: Tensor, intervened: Tensor) -> tuple[Tensor, Tensor]:
    """Spatial means of ``|Δ|`` and ``Δ`` per unit: ``[R, V]`` each."""
    delta = (clean - intervened).flatten(2) if clean.dim() > 2 else (clean - intervened).unsqueeze(-1)
    return delta.abs().mean(-1), delta.mean(-1)


def _sweep_layer(model, xs, layer, h, nxt, h_next, tidx, max_batch_size):
    """Zero each unit of ``layer`` in turn for every sample (rows ``unit * N + sample``): the target
    logit ``[U, N]`` and, if ``nxt`` is given, the change of its units ``[U, N, V]`` (|Δ| and Δ).
    Runs only the fx suffix after ``layer`` when the model splits there (else full passes)."""
    n, nu = h.shape[0], h.shape[1]
    suffix = suffix_module(model, layer)
    watch = [nxt] if nxt is not None else []
    if suffix is not None and watch:  # the suffix must still call the module of `nxt`
        with capture(model, watch) as probe_acts:
            suffix(h[:1])
        suffix = suffix if nxt in probe_acts else None
    module = resolve_module(model, layer)
    rows = rows_per_pass(suffix, (h,), max_batch_size) if suffix is not None else rows_per_pass(model, xs, max_batch_size)
    logits, absd, signed = [], [], []
    for start in range(0, nu * n, rows):
        idx = torch.arange(start, min(start + rows, nu * n), device=h.device)
        u, s = idx // n, idx % n
        with capture(model, watch) as got:
            if suffix is not None:
                out = suffix(_zero_rows(h[s], u))
            else:
                handle = module.register_forward_hook(lambda _m, _i, o, u=u: _zero_rows(o, u))
                try:
                    out = model(*(x[s] for x in xs))
                finally:
                    handle.remove()
        logits.append(gather_target(out, tidx[s]))
        if nxt is not None:
            a, b = _unit_change(h_next[s], got[nxt])
            absd.append(a)
            signed.append(b)
    logit = torch.cat(logits).view(nu, n)
    if nxt is None:
        return logit, None, None
    return logit, torch.cat(absd).view(nu, n, -1), torch.cat(signed).view(nu, n, -1)


def _z_test(d: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and z-score ``mean / (sd / sqrt(n))`` over the last dimension (``±inf`` when ``sd = 0``
    and the mean is not 0; 0 for fewer than 2 samples)."""
    n = d.shape[-1]
    mean = d.mean(-1)
    if n < 2:
        return mean, torch.zeros_like(mean)
    se = d.std(-1) / math.sqrt(n)
    z = torch.where(se > 0, mean / se.clamp_min(1e-300), torch.sign(mean) * math.inf)
    return mean, torch.nan_to_num(z, nan=0.0, posinf=math.inf, neginf=-math.inf)


def _p_value(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _check_args(model: nn.Module, layers: Sequence[str], top_k: int, alpha: float) -> list[str]:
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
        resolve_module(model, name)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"Expected argument `top_k` to be a positive int but got {top_k!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha <= 1.0:
        raise ValueError(f"Expected argument `alpha` to be a float in (0, 1] but got {alpha!r}")
    return list(layers)


def _clean_pass(model: nn.Module, xs: tuple[Tensor, ...], layers: list[str]) -> tuple[Tensor, dict[str, Tensor]]:
    with capture(model, layers) as acts:
        out = model(*xs)
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[1] < 2:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"Expected a classifier returning logits [N, classes >= 2] but the model returned {shape}")
    missing = [n for n in layers if n not in acts]
    if missing:
        raise ValueError(f"Expected every module of `layers` to run in the forward pass but {missing} did not")
    order = list(acts)
    if order != layers:
        raise ValueError(f"Expected argument `layers` in forward order {order} but got {layers}")
    for name, h in acts.items():
        if h.dim() < 2 or h.shape[0] != out.shape[0]:
            raise ValueError(f"Expected module {name!r} to output [N, units, ...] but got shape {tuple(h.shape)}")
    return out, dict(acts)


def _top(importance: Tensor, k: int) -> list[int]:
    order = sorted(range(importance.numel()), key=lambda u: (-float(importance[u]), u))
    return order[: min(k, importance.numel())]


def _candidate_edges(values: Tensor, sel_src: list[int], sel_tgt: list[int]) -> tuple[Tensor, Tensor]:
    """``values [U_src, N, U_tgt]`` -> per-sample stats of the graph's candidate edges
    ``[k_src, k_tgt, N]`` and the reference ``[k_tgt, N]`` (mean over source units outside the graph)."""
    v = values.permute(0, 2, 1)  # [U_src, U_tgt, N]
    outside = [u for u in range(values.shape[0]) if u not in set(sel_src)]
    ref = v[outside][:, sel_tgt].mean(0) if outside else torch.zeros_like(v[0, sel_tgt])
    return v[sel_src][:, sel_tgt], ref


def causal_graph(
    model: nn.Module,
    inputs: Inputs,
    layers: Sequence[str],
    top_k: int = 8,
    target: int | Tensor | None = None,
    alpha: float = 0.05,
    max_batch_size: int | None = None,
) -> CausalGraph:
    """Causal explanatory graph of ``model`` on ``inputs`` by path interventions.

    For each chosen layer ``l`` (in forward order) every unit ``i`` is zeroed in turn (one batch
    copy per unit, chunked by ``max_batch_size``), recording the target logit and the next chosen
    layer's units:

    .. math::
        e_i(x) = f_t(x) - f_t(x \\mid do(h_i := 0)), \\qquad
        m_{ij}(x) = \\overline{|h_j(x) - h_j(x \\mid do(h_i := 0))|}

    (the bar is the spatial mean for conv channels). Nodes: the ``top_k`` units of each layer by
    ``E_x|e_i(x)|`` plus the output classes (the targets). Candidate edges join the nodes of
    consecutive layers (weight ``E_x m_ij``) and the last layer's nodes to each class ``c``
    (weight ``E_{x: t(x)=c}|e_i(x)|``). **Significance** (Ahmad et al. 2023): with the reference
    ``r_j(x)`` = the mean of the same statistic over the source layer's units *outside* the graph
    (zero when every unit is in the graph), an edge is kept when the paired difference
    ``d(x) = m_ij(x) - r_j(x)`` has ``z = mean(d) / (sd(d)/sqrt(n)) >= z_{1-alpha}`` (1.645 for
    ``alpha = 0.05``, one-sided). Edge weights are normalised per target layer (max |w| = 1).
    ``meta["faithfulness"]`` is ``E[f_t(graph) - f_t(∅)] / E[f_t(x) - f_t(∅)]``: the share of the
    target logit, above the all-zeroed baseline ``∅`` (every unit of the chosen layers zeroed),
    that the graph's units alone reproduce (the other units of the chosen layers zeroed).

    Args:
        model: a classifier returning logits ``[N, classes]``.
        inputs: a tensor ``[N, ...]`` or a tuple of tensors.
        layers: module names in forward order; outputs ``[N, units, ...]``.
        top_k: units per layer in the graph.
        target: class index, per-sample indices ``[N]`` or ``None`` (predicted class).
        alpha: one-sided significance level of the edge test (``1.0`` keeps every candidate edge).
        max_batch_size: rows per forward pass.

    Returns:
        :class:`CausalGraph`.

    Raises:
        ValueError: unknown or misordered layers, ``top_k < 1``, ``alpha`` outside (0, 1], or a
            model that does not return ``[N, classes]`` logits.

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.eye(2)); _ = model[0].bias.zero_()
        ...     _ = model[2].weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.5]])); _ = model[2].bias.zero_()
        >>> x = torch.rand(16, 2, generator=torch.Generator().manual_seed(0)) + 0.5
        >>> causal_graph(model, x, ["1"], top_k=1, target=0).edges
        [('1:0', 'output:0', 1.0)]
    """
    layers = _check_args(model, layers, top_k, alpha)
    xs = as_tuple(inputs)
    z_crit = -math.inf if alpha >= 1.0 else float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(1.0 - alpha)))
    with audit_mode(model):
        out, acts = _clean_pass(model, xs, layers)
        tidx = resolve_target(out, target)
        f0 = gather_target(out, tidx)
        sweeps = [_sweep_layer(model, xs, layer, acts[layer], layers[i + 1] if i + 1 < len(layers) else None,
                              acts.get(layers[i + 1]) if i + 1 < len(layers) else None, tidx, max_batch_size)
                  for i, layer in enumerate(layers)]
        effects = [f0.unsqueeze(0) - logit for logit, _, _ in sweeps]  # [U_l, N]
        selected = [_top(e.abs().mean(1), top_k) for e in effects]
        graph = _assemble(layers, effects, selected, sweeps, tidx, f0, z_crit)
        graph.meta.update(_faithfulness(model, xs, layers, acts, selected, tidx, f0, max_batch_size))
    graph.meta.update(top_k=top_k, alpha=float(alpha), z_critical=_num(z_crit), samples=int(f0.shape[0]))
    return graph


def _assemble(layers, effects, selected, sweeps, tidx, f0, z_crit) -> CausalGraph:
    nodes, node_stats = [], {}
    for layer, e, sel in zip(layers, effects, selected):
        for u in sel:
            node_stats[f"{layer}:{u}"] = {"importance": float(e[u].abs().mean()), "effect": float(e[u].mean())}
            nodes.append(f"{layer}:{u}")
    classes = sorted(set(tidx.tolist()))
    for c in classes:
        rows = tidx == c
        nodes.append(f"{OUTPUT}:{c}")
        node_stats[f"{OUTPUT}:{c}"] = {"samples": float(rows.sum()), "logit": float(f0[rows].mean())}
    groups: list[list[tuple[str, str, float, float, float, float]]] = []
    candidates = 0
    for i in range(len(layers) - 1):
        _, absd, signed = sweeps[i]
        vals, ref = _candidate_edges(absd, selected[i], selected[i + 1])
        svals, _ = _candidate_edges(signed, selected[i], selected[i + 1])
        src = [f"{layers[i]}:{u}" for u in selected[i]]
        tgt = [f"{layers[i + 1]}:{u}" for u in selected[i + 1]]
        groups.append(_test_edges(vals, ref, svals.mean(-1), src, tgt, z_crit))
        candidates += vals.shape[0] * vals.shape[1]
    last = effects[-1].unsqueeze(1)  # [U, 1, N]
    out_edges = []
    for c in classes:
        rows = tidx == c
        vals, ref = _candidate_edges(last[:, :, rows].abs().transpose(1, 2), selected[-1], [0])
        signs = last[selected[-1]][:, :, rows].mean(-1)
        out_edges += _test_edges(vals, ref, signs, [f"{layers[-1]}:{u}" for u in selected[-1]], [f"{OUTPUT}:{c}"], z_crit)
        candidates += vals.shape[0]
    groups.append(out_edges)
    edges, edge_stats = [], []
    for group in groups:
        top = max((raw for _, _, raw, _, _, _ in group), default=0.0)
        for s, t, raw, ref_mean, z, sign in group:
            edges.append((s, t, (sign if sign != 0 else 1.0) * raw / top if top > 0 else 0.0))
            edge_stats.append({"raw": raw, "reference": ref_mean, "z": z, "p_value": _p_value(z)})
    return CausalGraph(list(layers), nodes, edges, node_stats, edge_stats, {"candidates": candidates})


def _test_edges(vals: Tensor, ref: Tensor, signed_mean: Tensor, src: list[str], tgt: list[str], z_crit: float):
    """Kept edges ``(source, target, raw, reference, z, sign)`` of one layer pair."""
    diff_mean, z = _z_test(vals - ref.unsqueeze(0))
    raw, ref_mean = vals.mean(-1), ref.mean(-1)
    keep = (z >= z_crit) & (diff_mean > 0) if math.isfinite(z_crit) else torch.ones_like(z, dtype=torch.bool)
    out = []
    for a, b in keep.nonzero().tolist():
        out.append((src[a], tgt[b], float(raw[a, b]), float(ref_mean[b]), float(z[a, b]), float(torch.sign(signed_mean[a, b]))))
    return out


def _faithfulness(model, xs, layers, acts, selected, tidx, f0, max_batch_size) -> dict[str, Any]:
    """The graph alone (other units of the chosen layers zeroed) vs all units zeroed."""
    keep_only = {}
    for layer, sel in zip(layers, selected):
        others = [u for u in range(acts[layer].shape[1]) if u not in set(sel)]
        if others:
            keep_only[layer] = Zero(units=others)
    rows = rows_per_pass(model, xs, max_batch_size)

    def run(ivs: dict) -> Tensor:
        with intervene(model, ivs):
            return map_rows(f0.shape[0], rows, lambda s: gather_target(model(*(x[s] for x in xs)), tidx[s]), f0.device)

    f_graph = run(keep_only) if keep_only else f0
    f_empty = run({layer: Zero() for layer in layers})
    denom = float((f0 - f_empty).mean())
    faith = float((f_graph - f_empty).mean()) / denom if denom != 0 else math.nan
    return {"faithfulness": _num(faith), "logit_full": float(f0.mean()), "logit_graph": float(f_graph.mean()),
            "logit_empty": float(f_empty.mean())}


def graph_stability(
    model: nn.Module,
    inputs: Inputs,
    layers: Sequence[str],
    top_k: int = 8,
    target: int | Tensor | None = None,
    alpha: float = 0.05,
    resamples: int = 2,
    noise: float = 0.05,
    seed: int = 0,
    max_batch_size: int | None = None,
    reference: CausalGraph | None = None,
) -> dict[str, float]:
    """Stability of the graph's edge set (the central claim of Ahmad et al. 2023).

    ``resample_jaccard``: mean Jaccard overlap of the edges of ``reference`` (default: the graph
    on ``inputs``) with the graphs built on ``resamples`` bootstrap resamples of the probe;
    ``noise_jaccard``: the same on ``inputs + noise * sd(inputs) * eps`` with Gaussian ``eps``.
    All randomness comes from a private generator seeded by ``seed``.

    Examples:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
        >>> sorted(graph_stability(model, x, ["1"], top_k=2, resamples=1))
        ['noise_jaccard', 'resample_jaccard']
    """
    for name, value in (("resamples", resamples), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "resamples" else 0):
            raise ValueError(f"Expected argument `{name}` to be a {'positive' if name == 'resamples' else 'non-negative'} int but got {value!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"Expected argument `noise` to be a non-negative float but got {noise!r}")
    xs = as_tuple(inputs)
    ref = reference if reference is not None else causal_graph(model, xs, layers, top_k, target, alpha, max_batch_size)
    gen = torch.Generator().manual_seed(seed)
    n = xs[0].shape[0]
    per_sample_target = isinstance(target, Tensor) and target.numel() > 1
    boot, noisy = [], []
    for _ in range(resamples):
        idx = torch.randint(n, (n,), generator=gen)
        t = target[idx.to(target.device)] if per_sample_target else target
        g = causal_graph(model, tuple(x[idx.to(x.device)] for x in xs), layers, top_k, t, alpha, max_batch_size)
        boot.append(ref.jaccard(g))
        jitter = tuple(
            x + noise * x.float().std().to(x.dtype) * torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
            if x.is_floating_point() else x for x in xs)
        noisy.append(ref.jaccard(causal_graph(model, jitter, layers, top_k, target, alpha, max_batch_size)))
    return {"resample_jaccard": sum(boot) / len(boot), "noise_jaccard": sum(noisy) / len(noisy)}
