"""First-order (attribution-patching) estimates of hidden-unit effects from one backward pass
through the suffix (Nanda 2023, "Attribution patching"; AtP and AtP*, Kramár et al. 2024).

For an intervention that sets unit u of ``h`` to ``b``, the effect ``f_t(h) − f_t(h | do(h_u := b))``
is estimated to first order:

- ``"atp"`` (plain attribution patching), around ``h``:

  .. math:: \\hat e_u(x) = \\sum_{i \\in u} (h_i - b_i)\\, \\frac{\\partial f_t}{\\partial h_i}(x)

- ``"attribution"`` (the default of the screen), around the layer's *frontier* ``z``, the input
  of the first module after it that mixes units (:mod:`~.unit_frontier`):

  .. math:: \\hat e_u(x) = \\sum_i \\big(z_i(h) - z_i(h \\mid do(h_u := b))\\big)\\, \\frac{\\partial f_t}{\\partial z_i}(x)

  with the change of ``z`` computed exactly for every row: the unit-local operations in between
  (batch norm, activation functions, pooling) run on the intervened rows, what follows them is
  linearised. Where the layer feeds a mixing module directly (or no frontier is found) both
  estimates coincide.

Both are exact when the suffix (from ``h``, resp. ``z``) is linear on the segment; they miss
saturation and kinks further down. A layer called more than once in a forward pass (shared
weights, a cell unrolled over time) has no frontier; its estimate sums the first-order terms of
every call, ``Σ_k (h_k − b_k) · ∂f_t/∂h_k``, as the exact interventions set the unit at every call:
the derivative at ``α = 1`` of ``f_t`` with the unit at ``b + α (h_u − b)`` at every call. It is
exact for independent calls (a siamese encoder) on a linear suffix; for chained calls (each call
reading the last one's output) ``f_t`` is a polynomial in ``α`` and no first-order estimate is. A layer whose number of calls
follows the rows (a loop until every row has converged, an adaptive solver's steps) is refused (``ValueError``) where
one chunk of rows runs it more often than another: the estimates pair each call's gradient over the chunks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from lightning_causal.causal.effects.gradient_check import Edit, check_gradient_path
from lightning_causal.causal.effects.unit_frontier import (
    Frontier,
    _at_frontier,
    find_frontier,
    frontier_gradient,
    frontier_inputs,
)
from lightning_causal.causal.effects.unit_rows import moving_rows, unit_rows
from lightning_causal.causal.engine.batching import each_chunk, map_rows
from lightning_causal.causal.engine.first_order import first_order_change
from lightning_causal.causal.engine.gradient_cuts import FLAT_STEPS, gradient_cut_causes
from lightning_causal.causal.engine.interventions import Intervention, Patch, resolve_module
from lightning_causal.causal.engine.live_values import close
from lightning_causal.causal.engine.prefix_cache import PrefixCache
from lightning_causal.causal.engine.state import gather_target
from lightning_causal.causal.engine.units import Layout, unit_positions_mask, unit_sums
from lightning_causal.causal.engine.unmoved_rows import map_moving

__all__ = ["ESTIMATORS", "call_gradients", "attribution_estimates"]

ESTIMATORS = ("attribution", "atp")


def call_gradients(cache: PrefixCache, target_idx: Tensor, max_batch_size: int | None = None) -> list[tuple[Tensor, Tensor]]:
    """``[(h_k, ∂f_t/∂h_k)]``, one pair ``[N, ...]`` per call ``k`` of the layer in a forward pass: its
    clean output and the gradient of each sample's target output with respect to it, by
    backpropagation through the suffix only (chunked; no parameter ``.grad`` is written).

    The gradient of call ``k`` is the total derivative of ``f_t`` with respect to an additive
    perturbation of that call's output (through every later call too), so that
    ``Σ_k (h_k − b_k) · ∂f_t/∂h_k`` is the first-order change when the unit is set at every call,
    as the exact interventions do (a layer used twice, a cell unrolled over time).

    Args:
        cache: the layer's :class:`~lightning_causal.causal.engine.prefix_cache.PrefixCache` on the
            probe.
        target_idx: ``[N]`` the explained class of each sample.
        max_batch_size: rows per backward chunk; ``None``: from the memory budget.
    """
    h = cache.value.detach()
    rows = max(1, cache.rows_per_pass(max_batch_size) // (1 if max_batch_size else 2))
    shapes: list[torch.Size] = []
    shapes_rows: list[int] = []  # the rows of the chunk that set ``shapes``

    def grad_rows(s: Tensor) -> Tensor:
        values: list[Tensor] = []
        shifts: list[Tensor] = []

        def shifted(v: Tensor) -> Tensor:  # every call's output plus a zero leaf: d f / d leaf is the call's gradient
            values.append(v.detach())
            shifts.append(torch.zeros_like(v, requires_grad=True))
            return v + shifts[-1]

        with torch.enable_grad():
            f = gather_target(cache(shifted, s), target_idx[s])
            grads = torch.autograd.grad(f.sum(), shifts, allow_unused=True) if f.requires_grad else [None] * len(shifts)
        if all(g is None for g in grads):
            _check_no_gradient_means_no_effect(cache, f, target_idx, s)
        if not shapes:
            shapes.extend(v.shape[1:] for v in values)
            shapes_rows.append(s.numel())
        if [v.shape[1:] for v in values] != shapes:
            counts = (f"{len(shapes)} times on {shapes_rows[0]} row(s) and {len(values)} times on {s.numel()}"
                      if len(values) != len(shapes) else f"{len(values)} times with other output shapes")
            raise ValueError(
                f"Expected layer {cache.layer!r} to run alike for every chunk of rows of the first-order estimates "
                f"(method='attribution'/'atp', screen=), but it ran {counts}: the number of its calls follows the rows "
                "(a loop until every row has converged, an adaptive ODE solver whose steps follow the batch), and the "
                "estimates pair each call's gradient over the chunks. Use method='exact' (and no screen), which sets the "
                "unit at every call of each pass; or make the number of calls fixed (a fixed number of iterations or "
                "solver steps)")
        pairs = [(v, torch.zeros_like(v) if g is None else g.detach()) for v, g in zip(values, grads)]
        return torch.cat([t.flatten(1) for pair in pairs for t in pair], 1)

    flat = map_rows(h.shape[0], rows, grad_rows, h.device)
    parts = flat.split([shape.numel() for shape in shapes for _ in range(2)], 1)
    return [(parts[2 * k].view(-1, *shape), parts[2 * k + 1].view(-1, *shape)) for k, shape in enumerate(shapes)]


def _check_no_gradient_means_no_effect(cache: PrefixCache, f: Tensor, target_idx: Tensor, s: Tensor) -> None:
    """No gradient reaches the layer: right only if the output does not depend on it. A forward
    that cuts the gradient after the layer (``.detach()``, ``torch.no_grad()``) while its values
    flow on would give first-order estimates of 0 for effects that are not: ``ValueError``."""
    with torch.no_grad():
        moved = gather_target(cache(lambda v: 1.0 - 0.5 * v, s), target_idx[s])
    if not close(moved, f.detach()):
        cause = gradient_cut_causes(cache.forward.model, more="torch.utils.checkpoint(..., use_reentrant=True) around it: "
                                                              "use_reentrant=False lets gradients through, or "
                                                              "torch.func.grad/jacrev/vjp of the inputs in forward (forces "
                                                              "-dE/dx of a Hamiltonian or energy network): it differentiates "
                                                              "through the layer, and from its values given as constants, "
                                                              "as the first-order estimates give them, returns 0")
        raise ValueError(
            f"Expected the gradient of the model's output to reach layer {cache.layer!r}, whose output it depends "
            f"on, but none does: the forward cuts the gradient after the layer ({cause}), so "
            "every first-order estimate would be 0. Use method='exact' (and no screen)")


def _check_zero_gradient_means_no_effect(cache: PrefixCache, interventions: Sequence[Intervention], units: Tensor,
                                         layout: Layout, target_idx: Tensor) -> None:
    """Every estimate is exactly 0: right only if the interventions change nothing. A gradient of 0 after the layer
    at every sample (``torch.round``/``floor``/``sign`` of the activations, without a straight-through gradient)
    while intervening on the units estimated, all at once, moves the output (on up to 64 samples): ``ValueError``.
    A gradient of 0 at the layer's values only (ReLUs after it off there and on at the intervened values, a flat
    point) is the first-order estimate's own limit: its zeros are kept."""
    s = torch.arange(min(64, cache.value.shape[0]), device=cache.value.device)
    chosen = units.tolist()
    with torch.no_grad():
        clean = gather_target(cache(cache.value[s], s), target_idx[s])
    for iv in interventions:
        edit = _on_rows(iv, s)

        def toward(h: Tensor, t: float, edit: Callable[[Tensor], Tensor] = edit) -> Tensor:
            return h + t * (torch.where(unit_positions_mask(h.shape, layout, chosen, h.device), edit(h), h) - h)

        with torch.no_grad():
            moved = gather_target(cache(lambda h: toward(h, 1.0), s), target_idx[s])
        if not close(moved, clean) and not _gradient_on_the_way(cache, toward, s, target_idx):
            raise ValueError(
                f"Expected the gradient of the model's output with respect to layer {cache.layer!r} to tell how the "
                f"output depends on its units, but it is 0 at every sample while intervening on them moves the output "
                f"({FLAT_STEPS} after the layer, without a straight-through gradient), so every first-order estimate is 0. "
                "Use method='exact' (and no screen)")


def _gradient_on_the_way(cache: PrefixCache, toward: Callable[[Tensor, float], Tensor], s: Tensor, target_idx: Tensor) -> bool:
    """Whether the gradient of the target output with respect to the layer's output is other than 0 halfway to the
    intervened values or at them (``toward(h, t)``): the model is not piecewise constant after the layer there."""
    for t in (0.5, 1.0):
        leaves: list[Tensor] = []

        def shifted(h: Tensor, t: float = t, leaves: list[Tensor] = leaves) -> Tensor:
            leaves.append(torch.zeros_like(h, requires_grad=True))
            return toward(h, t) + leaves[-1]

        with torch.enable_grad():
            f = gather_target(cache(shifted, s), target_idx[s])
            grads = torch.autograd.grad(f.sum(), leaves, allow_unused=True) if f.requires_grad else ()
        if any(g is not None and bool(g.any()) for g in grads):
            return True
    return False


def _range(estimates: list[Tensor]) -> Tensor:
    """One intervention: its estimate; a do-grid: the range of the first-order curve ``f_t − ê``."""
    if len(estimates) == 1:
        return estimates[0]
    curve = -torch.stack(estimates)
    return curve.max(0).values - curve.min(0).values


def attribution_estimates(
    cache: PrefixCache,
    interventions: Sequence[Intervention],
    units: Tensor,
    layout: Layout,
    *,
    target_idx: Tensor,
    max_batch_size: int | None = None,
    estimator: str = "attribution",
) -> Tensor:
    """First-order estimates ``[N, U]`` of the effects of ``interventions`` on ``units`` (call
    inside ``audit_mode``). ``estimator``: ``"attribution"`` (linearised at the frontier) or
    ``"atp"`` (at the layer's output); see the module docstring.

    Args:
        cache: the layer's :class:`~lightning_causal.causal.engine.prefix_cache.PrefixCache` on the
            probe.
        interventions: the interventions whose effects are estimated (one, or a do-grid).
        units: ``[U]`` the unit indices estimated.
        layout: the layer output's :class:`~lightning_causal.causal.engine.units.Layout`.
        target_idx: ``[N]`` the explained class of each sample.
        max_batch_size: rows per pass; ``None``: from the memory budget.
        estimator: ``"attribution"`` or ``"atp"``, as above.

    Examples:
        >>> from torch import nn
        >>> from lightning_causal.causal.engine.prefix_cache import cache_prefix
        >>> from lightning_causal.causal.engine.units import resolve_layout
        >>> from lightning_causal.causal.engine.interventions import Zero
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Identity(), nn.Linear(2, 1))
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.eye(2)); _ = net[0].bias.zero_()
        ...     _ = net[2].weight.copy_(torch.tensor([[3.0, -1.0]])); _ = net[2].bias.zero_()
        ...     cache = cache_prefix(net, torch.tensor([[1.0, 2.0]]), "1")
        >>> layout = resolve_layout(cache.value.shape)
        >>> attribution_estimates(cache, [Zero()], torch.arange(2), layout, target_idx=torch.zeros(1, dtype=torch.long))
        tensor([[ 3., -2.]])
    """
    if cache.records_gradients and cache.differentiates_layer:
        raise ValueError(
            f"Expected the first-order estimates of layer {cache.layer!r} (method='attribution'/'atp', screen=) to "
            "linearise the output in the layer's values, but the model's forward takes gradients with respect to the "
            f"output of layer {cache.layer!r} itself or a value computed from it (torch.autograd.grad(y, h), h that "
            "output or z = tanh(h): the model returns a derivative such as dy/dh, not forces -dE/dx of its inputs): the "
            "estimates give the layer's output as values of their own, from which the forward's autograd.grad cannot "
            "differentiate (torch: 'One of the "
            "differentiated Tensors does not require grad'). Use method='exact' without screen= (every unit set on the "
            "layer's live output, equal to a hand do() on such a model)")
    if cache.records_gradients:
        raise ValueError(
            f"Expected the first-order estimates of layer {cache.layer!r} (method='attribution'/'atp', screen=) to "
            "linearise the output in the layer's values, but the model takes gradients in its forward pass (its output "
            "records autograd under torch.no_grad(): torch.autograd.grad in forward, forces -dE/dx): setting a unit "
            "also takes away its derivative with respect to the inputs, a change of the output that no first-order "
            "term in the unit's value holds. Use method='exact' without screen= (every unit intervened on exactly, equal to "
            "a hand do() on such a model)")
    try:
        est = _estimates(cache, interventions, units, layout, target_idx, max_batch_size, estimator)
        if not bool(est.any()):
            _check_zero_gradient_means_no_effect(cache, interventions, units, layout, target_idx)
        return est
    except RuntimeError as err:
        if "torch.utils.checkpoint" not in str(err):
            raise
        raise ValueError(
            f"Expected the first-order estimates of layer {cache.layer!r} (method='attribution'/'atp', screen=) to follow "
            "autograd, but the model checkpoints activations (torch.utils.checkpoint), whose backward pass recomputes the "
            "checkpointed segment without the estimates' edits of the layer's output or of the next layer's input, and "
            f"torch refused the recomputation ({str(err).splitlines()[0]}). Use method='exact' (no backward pass), or "
            "call the segment without checkpoint for the audit") from err


def _estimates(cache: PrefixCache, interventions: Sequence[Intervention], units: Tensor, layout: Layout,
               target_idx: Tensor, max_batch_size: int | None, estimator: str) -> Tensor:
    """:func:`attribution_estimates` without the translation of a checkpoint's refusal."""
    h = cache.value.detach()
    frontier = None
    if estimator == "attribution":
        frontier = find_frontier(cache, resolve_module(cache.forward.model, cache.layer))
    if frontier is None or frontier.is_value:
        calls = call_gradients(cache, target_idx, max_batch_size)
        _check_paths(cache, None, target_idx, estimator)
        return _range([sum(unit_sums(first_order_change(hk - iv.values(hk).to(hk.dtype).expand_as(hk), gk), _call_layout(iv, hk, layout))
                           for hk, gk in calls)[:, units] for iv in interventions])
    n, rows = h.shape[0], cache.rows_per_pass(max_batch_size)

    def gradient_rows(s: Tensor) -> tuple[Tensor, Tensor]:
        zs, gs = frontier_gradient(cache, frontier, target_idx, s)
        if gs is None:  # no gradient reaches the frontier: right only if the output does not depend on the layer
            with torch.no_grad():
                clean = gather_target(cache(cache.value[s], s), target_idx[s])
            _check_no_gradient_means_no_effect(cache, clean, target_idx, s)
        return zs, torch.zeros_like(zs) if gs is None else gs

    # the chunked passes (backward ones too): out of memory, a chunk runs again in halves, as map_rows does
    z, g = (torch.cat(t) for t in zip(*each_chunk(n, rows, gradient_rows, h.device)))
    _check_paths(cache, frontier, target_idx, estimator)
    if _unit_local(cache, frontier, interventions, units, layout, z):
        moved = [torch.cat(each_chunk(n, rows, lambda s, iv=iv: frontier_inputs(cache, frontier, _on_rows(iv, s), s), h.device))
                 for iv in interventions]
        return _range([unit_sums(first_order_change(z - zk, g), layout)[:, units] for zk in moved])

    def evaluate(idx: Tensor) -> Tensor:  # one partial run per (intervention, unit, sample) row
        edit, s = unit_rows(interventions, units, layout, n, idx=idx)
        return first_order_change(z[s] - frontier_inputs(cache, frontier, edit, s), g[s]).flatten(1).sum(1)

    # the rows that leave the layer's output as it is (moving_rows) leave z as it is: their estimate is 0, not run
    k, nu = len(interventions), units.numel()
    unmoved = torch.zeros((), dtype=torch.promote_types(z.real.dtype, g.real.dtype), device=z.device).expand(k * nu * n)
    est = map_moving(moving_rows(cache, interventions, units, layout), rows, evaluate, unmoved, h.device)
    return _range(list(est.view(k, nu, n).transpose(1, 2)))


def _check_paths(cache: PrefixCache, frontier: Frontier | None, target_idx: Tensor, estimator: str) -> None:
    """Warn when autograd misses part of the output's dependence on the point the estimate
    linearises at (the layer's output at every call, or the frontier), checked on two probe rows
    (:func:`~lightning_causal.causal.effects.gradient_check.check_gradient_path`)."""
    rows = torch.arange(min(2, cache.value.shape[0]), device=cache.value.device)

    def at_layer(edit: Edit) -> Tensor:
        count = iter(range(1 << 62))
        return gather_target(cache(lambda v: edit(next(count), v), rows), target_idx[rows])

    def at_frontier(edit: Edit) -> Tensor:
        with _at_frontier(frontier, lambda args: (edit(0, args[0]), *args[1:])):
            return gather_target(cache(cache.value[rows], rows), target_idx[rows])

    where = f"layer {cache.layer!r}" if frontier is None else f"the input of {type(frontier.module).__name__} after layer {cache.layer!r}"
    check_gradient_path(at_layer if frontier is None else at_frontier, where,
                        f"the first-order estimates ({estimator!r}: what method={estimator!r} returns and screen= ranks by)",
                        "use method='exact' without screen=", per_channel=True, model=cache.forward.model)  # through a reentrant checkpoint too


def _call_layout(iv: Intervention, h: Tensor, layout: Layout) -> Layout:
    """The units of one call's output ``h``, found in it as the exact interventions find them (a
    shared layer applied to ``[N, D]`` and to ``[N, T, D]``: the last dimension both times for
    ``unit_dim=-1``); its number of units must be the first call's."""
    lay = iv.layout(h) if h.dim() > 1 else layout
    if lay.num_units != layout.num_units:
        raise ValueError(f"Expected every call of the layer to have {layout.num_units} units, as its first call does, but "
                         f"a later call returned {list(h.shape)} ({lay.num_units} units on dimension {lay.dim})")
    return lay


def _unit_local(cache: PrefixCache, frontier: Frontier, ivs: Sequence[Intervention], units: Tensor, layout: Layout,
                z: Tensor) -> bool:
    """Whether the operations between the layer and its frontier act on each unit separately, checked
    on two samples: intervening on one unit changes ``z`` only at that unit's positions, and there
    exactly as intervening on all units at once does. Then one partial run per intervention with
    every unit intervened gives each unit's change of ``z``."""
    h = cache.value
    if z.dim() != h.dim() or z.shape[layout.dim] != h.shape[layout.dim]:
        return False
    rows = torch.arange(min(2, h.shape[0]), device=h.device)
    for iv in ivs:
        every = frontier_inputs(cache, frontier, _on_rows(iv, rows), rows)
        for u in {int(units[0]), int(units[-1])}:
            one = frontier_inputs(cache, frontier, _on_rows(_only(iv, u), rows), rows)
            at_u = unit_positions_mask(z.shape, layout, [u], z.device).expand_as(one)
            if not (torch.equal(one[~at_u], z[rows][~at_u]) and close(one[at_u], every[at_u])):
                return False
    return True


def _only(iv: Intervention, unit: int) -> Intervention:
    """``iv`` restricted to one unit."""
    single = copy.copy(iv)
    single.units = [unit]
    return single


def _on_rows(iv: Intervention, rows: Tensor) -> Intervention | Callable[[Tensor], Tensor]:
    """``iv`` for a pass of the samples ``rows``: a :class:`Patch` as an edit taking those samples'
    source rows (applied to the pass's rows alone, it would pair them with its first rows)."""
    if not isinstance(iv, Patch):
        return iv
    return lambda h: torch.where(iv.unit_mask(h), iv.sample_values(h, rows), h)
