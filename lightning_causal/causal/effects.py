"""Causal effects of interventions on inputs and on hidden units.

Every estimator enumerates *rows* (an intervention applied to one sample) and evaluates them in
large forward passes chunked to a memory budget (:mod:`lightning_causal.causal._batching`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from lightning_causal.causal._batching import map_rows, rows_per_pass
from lightning_causal.causal._state import as_tuple, audit_mode, gather_target, resolve_target
from lightning_causal.causal._suffix import suffix_module
from lightning_causal.causal.groups import check_feature_mask, num_groups
from lightning_causal.causal.interventions import Intervention, Zero, capture, resolve_module

__all__ = ["input_effects", "interventional_expectations", "average_causal_effect", "unit_effects"]

Inputs = Tensor | tuple[Tensor, ...]
Target = int | Tensor | None


def _baselines(xs: tuple[Tensor, ...], baseline: float | Tensor | tuple) -> tuple[Tensor, ...]:
    bs = baseline if isinstance(baseline, tuple) else (baseline,) * len(xs)
    if len(bs) != len(xs):
        raise ValueError(f"Expected argument `baseline` to have one entry per input ({len(xs)}) but got {len(bs)}")
    out = []
    for x, b in zip(xs, bs):
        if isinstance(b, bool) or not isinstance(b, (int, float, Tensor)):
            raise TypeError(f"Expected argument `baseline` to be a number or a tensor but got {type(b)}")
        b = torch.as_tensor(b, dtype=x.dtype, device=x.device)
        if b.dim() == x.dim() - 1:
            b = b.unsqueeze(0)
        if b.dim() == 0:
            b = b.view([1] * x.dim())
        if b.dim() != x.dim() or b.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                f"Expected argument `baseline` to be a scalar or broadcastable to {list(x.shape)} but got {list(b.shape)}"
            )
        try:
            torch.broadcast_shapes(b.shape, x.shape)
        except RuntimeError as err:
            raise ValueError(f"Expected argument `baseline` broadcastable to {list(x.shape)} but got {list(b.shape)}") from err
        if not torch.isfinite(b).all():
            raise ValueError("Expected argument `baseline` to be finite but it holds NaN or infinity")
        out.append(b)
    return tuple(out)


def _rows(t: Tensor, s: Tensor) -> Tensor:
    """Rows ``s`` of a per-sample tensor, or the tensor itself when it is shared (first dim 1)."""
    return t if t.shape[0] == 1 else t[s]


def _ablate(x: Tensor, mask: Tensor, s: Tensor, groups: Tensor, values: Tensor) -> Tensor:
    """``x[s]`` with the elements of group ``groups[r]`` of row ``r`` replaced by ``values``."""
    selected = _rows(mask, s) == groups.view([-1] + [1] * (x.dim() - 1))
    return torch.where(selected, values, x[s])


def _clean_target(model: nn.Module, xs: tuple[Tensor, ...], target: Target) -> tuple[Tensor, Tensor]:
    out = model(*xs)
    idx = resolve_target(out, target)
    return idx, gather_target(out, idx)


def input_effects(
    model: nn.Module,
    inputs: Inputs,
    feature_mask: Tensor | tuple[Tensor, ...],
    baseline: float | Tensor | tuple = 0.0,
    target: Target = None,
    max_batch_size: int | None = None,
) -> Tensor:
    """Per-sample effect of do(x_g := b) on the target output, for each feature group g.

    .. math:: \\delta_g(x) = f_t(x) - f_t(x \\mid do(x_g := b))

    With a constant baseline this equals Captum's ``FeatureAblation`` for group g (TRACER's input
    interventions; Chattopadhyay et al. 2019). All ``G * N`` interventions run in batched forward
    passes of at most ``max_batch_size`` rows (default: a 512 MiB activation budget).

    Args:
        model: any module mapping ``inputs`` to ``[N, classes]`` (or ``[N]``).
        inputs: a tensor ``[N, ...]`` or a tuple of tensors.
        feature_mask: integer group ids ``0..G-1`` broadcastable to each input (Captum's convention).
        baseline: scalar, tensor broadcastable to the input, or a tuple (one per input).
        target: class index, per-sample indices ``[N]``, or ``None`` (the predicted class).
        max_batch_size: rows per forward pass.

    Returns:
        Tensor ``[N, G]``.

    Examples:
        >>> model = nn.Linear(3, 1, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[1.0, 2.0, -1.0]]))
        >>> input_effects(model, torch.ones(1, 3), torch.tensor([[0, 1, 1]]))
        tensor([[1., 1.]])
    """
    xs = as_tuple(inputs)
    masks = check_feature_mask(xs, feature_mask)
    bases = _baselines(xs, baseline)
    n, g = xs[0].shape[0], num_groups(masks)
    with audit_mode(model):
        tidx, f0 = _clean_target(model, xs, target)
        rows = max(1, rows_per_pass(model, xs, max_batch_size))
        changed = _changed(xs, masks, bases, g).T  # [G, N]

        def evaluate(idx: Tensor) -> Tensor:
            grp, s = idx // n, idx % n
            xi = tuple(_ablate(x, m, s, grp, _rows(b, s)) for x, m, b in zip(xs, masks, bases))
            return gather_target(model(*xi), tidx[s])

        ablated = _active_rows(changed, f0, rows, evaluate)
    return (f0.unsqueeze(0) - ablated).T.contiguous()


def _active_rows(changed: Tensor, f0: Tensor, rows: int, evaluate: Callable[[Tensor], Tensor]) -> Tensor:
    """Evaluate only the rows whose intervention changes the input; the others keep the clean
    output ``f0`` (their effect is exactly 0). ``changed`` is ``[..., N]``; row index = flat index."""
    out = f0.expand_as(changed).clone()
    active = changed.reshape(-1).nonzero().squeeze(1)
    if active.numel():
        out.view(-1)[active] = map_rows(active.numel(), rows, lambda idx: evaluate(active[idx]), f0.device)
    return out


def _changed(xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], bases: tuple[Tensor, ...], g: int) -> Tensor:
    """``[N, G]``: does do(x_g := b) change any element of sample n? (O(N·D) memory)."""
    n = xs[0].shape[0]
    count = torch.zeros(n, g, device=xs[0].device)
    for x, m, b in zip(xs, masks, bases):
        diff = (x != b).reshape(n, -1).float()
        count.scatter_add_(1, m.expand_as(x).reshape(n, -1), diff)
    return count > 0


def _grid(xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], values: Tensor | str, num_values: int) -> Tensor:
    g = num_groups(masks)
    if isinstance(values, str):
        if values != "quantiles":
            raise ValueError(f"Expected argument `values` to be a tensor or 'quantiles' but got {values!r}")
        if isinstance(num_values, bool) or not isinstance(num_values, int) or num_values < 2:
            raise ValueError(f"Expected argument `num_values` to be an int >= 2 but got {num_values!r}")
        levels = torch.linspace(0.05, 0.95, num_values, device=xs[0].device)
        rows = []
        for grp in range(g):
            pooled = torch.cat([x.expand(torch.broadcast_shapes(m.shape, x.shape))[(m == grp).expand_as(x)] for x, m in zip(xs, masks)])
            rows.append(torch.quantile(pooled.float(), levels) if pooled.numel() else torch.zeros_like(levels))
        return torch.stack(rows).to(xs[0].dtype)
    if not isinstance(values, Tensor):
        raise TypeError(f"Expected argument `values` to be a tensor or 'quantiles' but got {type(values)}")
    values = values.to(device=xs[0].device, dtype=xs[0].dtype)
    if values.dim() == 1 and values.numel() >= 1:
        return values.unsqueeze(0).expand(g, -1)
    if values.dim() == 2 and values.shape[0] == g:
        return values
    raise ValueError(f"Expected argument `values` of shape [K] or [{g}, K] but got {list(values.shape)}")


def interventional_expectations(
    model: nn.Module,
    inputs: Inputs,
    feature_mask: Tensor | tuple[Tensor, ...],
    values: Tensor | str = "quantiles",
    target: Target = None,
    max_batch_size: int | None = None,
    num_values: int = 8,
) -> tuple[Tensor, Tensor]:
    """μ_g(α) = E_x[f_t(x | do(x_g := α))] for each group g and value α (Chattopadhyay et al. 2019).

    Args:
        values: ``[K]`` values shared by all groups, ``[G, K]`` per group, or ``"quantiles"``
            (``num_values`` quantiles, 5% to 95%, of each group's values over ``inputs``).

    Returns:
        ``(mu [G, K], values [G, K])``.
    """
    xs = as_tuple(inputs)
    masks = check_feature_mask(xs, feature_mask)
    grid = _grid(xs, masks, values, num_values)
    if not torch.isfinite(grid).all():
        raise ValueError("Expected argument `values` to be finite but it holds NaN or infinity")
    n, (g, k) = xs[0].shape[0], grid.shape
    flat = grid.T.reshape(-1)  # row order: value k, group g
    with audit_mode(model):
        tidx, f0 = _clean_target(model, xs, target)
        rows = max(1, rows_per_pass(model, xs, max_batch_size))
        # [K, G, N]: rows where x_g already equals α are no-ops and keep f0
        changed = torch.stack(
            [_changed(xs, masks, tuple(grid[:, kk][m].to(x.dtype) for x, m in zip(xs, masks)), g).T for kk in range(k)]
        )

        def evaluate(idx: Tensor) -> Tensor:
            kg, s = idx // n, idx % n
            grp = kg % g
            v = flat[kg].view([-1] + [1] * (xs[0].dim() - 1))
            xi = tuple(_ablate(x, m, s, grp, v.to(x.dtype)) for x, m in zip(xs, masks))
            return gather_target(model(*xi), tidx[s])

        out = _active_rows(changed, f0, rows, evaluate)
    return out.mean(-1).T.contiguous(), grid


def average_causal_effect(
    model: nn.Module,
    inputs: Inputs,
    feature_mask: Tensor | tuple[Tensor, ...],
    values: Tensor | str = "quantiles",
    target: Target = None,
    max_batch_size: int | None = None,
    num_values: int = 8,
) -> Tensor:
    """Average causal effect curve of each feature group (Chattopadhyay et al. 2019).

    .. math:: ACE_g(α) = μ_g(α) - \\frac{1}{K} \\sum_{α'} μ_g(α')

    For a linear model ``f(x) = w·x`` this is ``w_g (α − mean α)``.

    Returns:
        Tensor ``[G, K]``.

    Examples:
        >>> model = nn.Linear(2, 1, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[2.0, -1.0]]))
        >>> average_causal_effect(model, torch.randn(5, 2), torch.tensor([[0, 1]]), torch.tensor([0.0, 1.0]))
        tensor([[-1.0000,  1.0000],
                [ 0.5000, -0.5000]])
    """
    mu, _ = interventional_expectations(model, inputs, feature_mask, values, target, max_batch_size, num_values)
    return mu - mu.mean(dim=1, keepdim=True)


def _interventions(intervention: Intervention | Sequence[Intervention]) -> list[Intervention]:
    ivs = [intervention] if isinstance(intervention, Intervention) else list(intervention)
    if not ivs or not all(isinstance(iv, Intervention) for iv in ivs):
        raise TypeError(f"Expected argument `intervention` to be an Intervention or a non-empty list of them but got {intervention!r}")
    units = {tuple(iv.units) if iv.units is not None else None for iv in ivs}
    if len(units) != 1:
        raise ValueError("Expected all interventions of a do-grid to select the same `units`")
    return ivs


def _replace_units(h: Tensor, units: Tensor, values: Tensor) -> Tensor:
    """``h`` with unit ``units[r]`` of row ``r`` replaced by ``values`` (broadcastable to ``h``)."""
    onehot = torch.zeros(h.shape[0], h.shape[1], dtype=torch.bool, device=h.device)
    onehot[torch.arange(h.shape[0], device=h.device), units] = True
    return torch.where(onehot.view(list(onehot.shape) + [1] * (h.dim() - 2)), values, h)


def _row_values(ivs: list[Intervention], k: Tensor, h: Tensor) -> Tensor:
    """Intervened values of each row ``r`` of ``h`` under intervention ``ivs[k[r]]``."""
    if len(ivs) == 1:
        return ivs[0].values(h).to(h.dtype).expand_as(h)
    vals = torch.empty_like(h)
    for kk in k.unique().tolist():
        sel = k == kk
        vals[sel] = ivs[kk].values(h[sel]).to(h.dtype).expand_as(h[sel])
    return vals


def unit_effects(
    model: nn.Module,
    inputs: Inputs,
    layer: str,
    intervention: Intervention | Sequence[Intervention] | None = None,
    target: Target = None,
    max_batch_size: int | None = None,
    use_suffix: bool = True,
) -> Tensor:
    """Counterfactual importance of each unit (conv channel or neuron) of ``layer``.

    .. math:: e_u(x) = f_t(x) - f_t(x \\mid do(h_u := a))

    (Debbi 2021; CARE, Sun et al. 2022). With a do-grid (a list of ``SetTo`` interventions) the
    effect is CARE's range of the interventional curve, ``max_a f_t(x|do(h_u:=a)) − min_a f_t(x|do(h_u:=a))``.

    The network prefix runs once; only the suffix (split with ``torch.fx``) runs on the batch
    expanded with one unit intervened per copy. Where the model cannot be split exactly (a skip
    connection crossing ``layer``, a layer called twice, untraceable code) full forward passes
    are used instead; the numbers are the same either way.

    Args:
        layer: module name from ``model.named_modules()``; its output is ``[N, U, ...]``.
        intervention: an :class:`Intervention` (default ``Zero()``) or a list (do-grid); its
            ``units`` restrict the units evaluated.
        use_suffix: set ``False`` to force full forward passes.

    Returns:
        Tensor ``[N, U]`` (``U`` = number of selected units).

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.eye(2)); _ = model[0].bias.zero_()
        ...     _ = model[2].weight.copy_(torch.tensor([[3.0, -1.0]])); _ = model[2].bias.zero_()
        >>> unit_effects(model, torch.tensor([[1.0, 2.0]]), "1")
        tensor([[ 3., -2.]])
    """
    xs = as_tuple(inputs)
    ivs = _interventions(intervention if intervention is not None else Zero())
    module = resolve_module(model, layer)
    with audit_mode(model):
        with capture(model, [layer]) as acts:
            out = model(*xs)
        if layer not in acts or acts[layer].dim() < 2:
            raise ValueError(f"Expected module {layer!r} to output a tensor [N, U, ...] with a unit dimension")
        h = acts[layer]
        tidx = resolve_target(out, target)
        f0 = gather_target(out, tidx)
        units = torch.as_tensor(ivs[0].units if ivs[0].units is not None else range(h.shape[1]), device=h.device)
        if int(units.max()) >= h.shape[1]:
            raise ValueError(f"Expected `units` in [0, {h.shape[1] - 1}] for layer {layer!r} but got {units.tolist()}")
        n, nu, k = h.shape[0], units.numel(), len(ivs)
        suffix = suffix_module(model, layer) if use_suffix else None

        def split(idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            ku, s = idx // n, idx % n
            return ku // nu, units[ku % nu], s

        if suffix is not None:
            rows = rows_per_pass(suffix, (h,), max_batch_size)

            def evaluate(idx: Tensor) -> Tensor:
                kk, u, s = split(idx)
                hr = h[s]
                return gather_target(suffix(_replace_units(hr, u, _row_values(ivs, kk, hr))), tidx[s])

        else:
            rows = rows_per_pass(model, xs, max_batch_size)

            def evaluate(idx: Tensor) -> Tensor:
                kk, u, s = split(idx)
                handle = module.register_forward_hook(
                    lambda _m, _i, o: _replace_units(o, u, _row_values(ivs, kk, o))
                )
                try:
                    return gather_target(model(*(x[s] for x in xs)), tidx[s])
                finally:
                    handle.remove()

        curve = map_rows(k * nu * n, rows, evaluate, h.device).view(k, nu, n)
    if k == 1:
        return (f0.unsqueeze(0) - curve[0]).T.contiguous()
    return (curve.max(0).values - curve.min(0).values).T.contiguous()
