"""Path-specific effects between units of chosen layers (path interventions: Ahmad et al. 2023;
Diallo et al. 2023; path-specific effects: Pearl 2001, Avin, Shpitser & Pearl 2005).

For chosen layers ``L_1 … L_K`` (forward order), a unit ``i`` of ``L_a`` and a unit ``j`` of a later
``L_c``, the value ``j`` takes when ``i`` is set to its baseline ``b`` and every chosen layer in
between (``L_{a+1} … L_{c-1}``) keeps its clean value is

.. math:: \\tilde h_j(x) = h_j\\big(x \\mid do(h_i := b),\\ do(L_{a<m<c} := L_m(x))\\big)

(so for consecutive layers: ``j``'s value under ``do(h_i := b)``; for ``c > a + 1``: what reaches
``j`` along paths that avoid the layers in between, e.g. a skip connection). The path effect of
the edge ``i → j`` is the change of the explained output when **only** ``j`` receives that value
and every other unit, the skip connections included, sees the clean ``h_i``:

.. math:: p_{ij}(x) = f_t(x) - f_t\\big(x \\mid do(h_j := \\tilde h_j(x))\\big)

and the edge ``i → output`` carries the effect along paths that avoid every later chosen layer,
``p_{i,out}(x) = f_t(x) - f_t(x | do(h_i := b), do(L_{m>a} := L_m(x)))`` (the unit effect for the
last chosen layer).

Rows are (source unit, sample) pairs for the first pass (``do(h_i := b)``; the values reaching the
next chosen layer are recorded, which gives the unit effects as well; where a path from the source
avoids the next chosen layer, a second sweep records each later chosen layer, then clamps it to
its clean value) and (edge, sample) pairs for the patching pass (one target unit patched); all run
in chunked batches, the first pass only on rows whose source unit does not already hold ``b`` on the
sample, bit for bit (:func:`~lightning_causal.causal.effects.unit_rows.moving_units`: such a row runs
the clean sample, its effects are 0), the patching only on rows where the patched value differs from
the clean one beyond round-off; a chunk that runs the device out of memory runs again in halves
(:func:`~lightning_causal.causal.engine.batching.each_chunk`). Where the caller names samples that are copies of
earlier ones (``copies``: a bootstrap resample's repeated draws), only the first of each runs and its effects are
copied to the others: the same numbers, a third fewer rows for a resample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lightning_causal.causal.effects.unit_rows import moving_units
from lightning_causal.causal.engine.batching import map_rows, rows_alone
from lightning_causal.causal.engine.units import Layout
from lightning_causal.causal.engine.unmoved_rows import each_moving
from lightning_causal.causal.structure.graph_context import GraphContext, Hook, UnitEdit
from lightning_causal.causal.structure.layer_activations import skipped_modules_error

__all__ = ["PathEffects", "path_effects_from"]


@dataclass
class PathEffects:
    """Per-sample effects of one source layer's units.

    Attributes:
        hidden: target layer -> ``[k_src, k_tgt, N]`` path effects of the edges into its units.
        exists: target layer -> ``[k_src, k_tgt]`` whether any row changed the target unit (no
            change on any sample: no path, the effect is exactly 0 and the edge is not a candidate).
        output: ``[k_src, N]`` change of the explained output: the unit effect ``e_i`` of a sweep
            without clamping, the effect along the paths that avoid every later chosen layer with it.
    """

    hidden: dict[str, Tensor]
    exists: dict[str, Tensor]
    output: Tensor


def _record(layer: str, store: dict[str, Tensor], clamp: Tensor | None) -> Hook:
    def fn(h: Tensor) -> Tensor | None:
        store[layer] = h.detach().clone()  # a later in-place op (ReLU(inplace=True)) must not reach it
        return clamp

    return fn


def path_effects_from(
    ctx: GraphContext,
    source: str,
    units: list[int],
    targets: dict[str, list[int]],
    *,
    base: Tensor,
    clamp: bool = True,
    copies: Tensor | None = None,
) -> PathEffects:
    """Path effects of the ``units`` of chosen layer ``source`` into ``targets`` (later chosen layer
    -> its target units), and the change of the explained output.

    With ``clamp`` every later chosen layer is recorded, then set to its clean value, so that what
    reaches a non-consecutive layer (and the output) comes along the paths that avoid the layers in
    between. Without it (``targets`` then holds the next chosen layer only), the output change is
    the unit effect ``e_i`` and the sweep doubles as the unit-effect sweep of ``source``.

    Args:
        ctx: the clean pass.
        source: a chosen layer.
        units: source units ``i``.
        targets: later chosen layer -> target units ``j``.
        base: the value ``b`` (broadcastable to ``[1, U, ...]`` of ``source``).
        clamp: clamp every later chosen layer to its clean value after recording it.
        copies: ``[N]``, the first sample each sample is a copy of (itself where none), where the caller knows the
            samples equal in every input, target and forward argument (a bootstrap resample,
            :func:`~lightning_causal.causal.structure.graph.graph_stability`): only the first of each runs, its
            effects copied to the others (``None``: every sample runs; so does a model that draws noise).
    """
    n, k = ctx.n, len(units)
    later = ctx.layers[ctx.layers.index(source) + 1:]
    if not clamp and any(t != later[0] for t in targets):
        raise ValueError("Expected the next chosen layer as the only target of a sweep without clamping")
    h = ctx.acts[source]
    src = torch.as_tensor(units, dtype=torch.long, device=h.device)
    hidden = {t: torch.zeros(k, len(js), n, dtype=ctx.f0.dtype, device=h.device) for t, js in targets.items()}
    exists = {t: torch.zeros(k, len(js), dtype=torch.bool, device=h.device) for t, js in targets.items()}
    change = torch.zeros(k, n, dtype=ctx.f0.dtype, device=h.device)

    def sweep(idx: Tensor) -> Tensor:  # its rows' results written by index: a chunk run again in halves writes the same
        i_idx, s = idx // n, idx % n
        store: dict[str, Tensor] = {}
        hooks = {layer: _record(layer, store, ctx.acts[layer][s] if clamp else None) for layer in (later if clamp else targets)}
        logit = ctx.logits_from(source, UnitEdit(src[i_idx], base, ctx.layout(source)), s, hooks)
        if rows_alone():  # rows_alone_checked's check runs rows apart from their chunk: their output change compared only
            return ctx.f0[s] - logit
        if missing := [layer for layer in targets if layer not in store]:
            raise skipped_modules_error(missing, s)
        change[i_idx, s] = ctx.f0[s] - logit
        for layer, js in targets.items():
            _patch_targets(ctx, layer, js, store[layer], i_idx, s, hidden[layer], exists[layer])
        return change[i_idx, s]

    # a row whose source unit already holds the baseline on its sample runs the clean sample: its output change is 0
    # and no target unit moves (no patching pass, no path), as the zeros above say; not run (moving_units), unless the
    # model draws noise (its passes draw separately: every row runs, as before)
    moving = None if ctx.noisy else moving_units(h, lambda _k, _part, _s: base, 1, src, Layout(1, 1, h.shape[1]))
    copied = copies is not None and not ctx.noisy
    if copied:  # a copy of an earlier sample: its rows not run, the first's effects copied below (a bootstrap's ~37%)
        first = (copies == torch.arange(n, device=copies.device)).to(h.device).repeat(k)  # flat row i * n + s
        moving = first if moving is None else moving & first
    # out of memory: halved, as map_rows does; each chunk's output changes checked against its first and last rows apart
    each_moving(moving, k * n, ctx.rows(source, k * n), sweep, h.device, rows_of=lambda change_rows: change_rows)
    if copied:
        at = copies.to(h.device)
        change = change[:, at]
        hidden = {t: e[:, :, at] for t, e in hidden.items()}  # exists: any sample, the copies' are their first's
    return PathEffects(hidden, exists, change)


def _patch_targets(ctx: GraphContext, layer: str, js: list[int], reached: Tensor, i_idx: Tensor, s: Tensor,
                   effects: Tensor, exists: Tensor) -> None:
    """Second pass for one chunk of source rows: each target unit ``j`` patched alone with the value
    that reached it; effects written to ``effects[i, j, sample]``."""
    tgt = torch.as_tensor(js, dtype=torch.long, device=reached.device)
    values = reached[:, tgt]  # [R, k_tgt, ...]
    clean = ctx.acts[layer][s][:, tgt]
    change = (values - clean).abs().reshape(values.shape[0], values.shape[1], -1).amax(-1)
    r_idx, j_idx = (change > ctx.unit_tolerance(layer)).nonzero(as_tuple=True)
    exists[i_idx[r_idx], j_idx] = True
    if r_idx.numel() == 0:
        return

    def evaluate(idx: Tensor) -> Tensor:
        rr, jj = r_idx[idx], j_idx[idx]
        ss = s[rr]
        patched = UnitEdit(tgt[jj], values[rr, jj].unsqueeze(1), ctx.layout(layer))
        return ctx.f0[ss] - ctx.logits_from(layer, patched, ss, None)

    p = map_rows(r_idx.numel(), ctx.rows(layer, r_idx.numel()), evaluate, reached.device)
    effects[i_idx[r_idx], j_idx, s[r_idx]] = p.to(effects.dtype)
