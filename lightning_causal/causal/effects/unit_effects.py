"""Counterfactual importance of hidden units: the effect of do(h_u := a) on the target output for
each unit u (conv channel or neuron) of a layer (Debbi 2021; CARE, Sun et al. 2022)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.ablation import replace_units
from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.interventions import (
    Intervention,
    Zero,
    capture,
    module_output,
    replace_output,
    resolve_module,
)
from lightning_causal.causal.engine.state import as_tuple, audit_mode, gather_target, resolve_target
from lightning_causal.causal.engine.suffix import suffix_module

__all__ = ["unit_effects", "check_interventions"]

Inputs = Tensor | tuple[Tensor, ...]
Target = int | Tensor | None


def check_interventions(intervention: Intervention | Sequence[Intervention]) -> list[Intervention]:
    ivs = [intervention] if isinstance(intervention, Intervention) else list(intervention)
    if not ivs or not all(isinstance(iv, Intervention) for iv in ivs):
        raise TypeError(f"Expected argument `intervention` to be an Intervention or a non-empty list of them but got {intervention!r}")
    units = {tuple(iv.units) if iv.units is not None else None for iv in ivs}
    if len(units) != 1:
        raise ValueError("Expected all interventions of a do-grid to select the same `units`")
    return ivs


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
    *,
    target: Target = None,
    max_batch_size: int | None = None,
    use_suffix: bool = True,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
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
        target, max_batch_size, output, additional_forward_args: as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.

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
    ivs = check_interventions(intervention if intervention is not None else Zero())
    n = xs[0].shape[0]
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=n)
    model = forward.model
    module = resolve_module(model, layer)
    with audit_mode(model):
        raw_kind: list[type] = []
        probe = module.register_forward_hook(lambda _m, _i, o: raw_kind.append(type(o)))
        try:
            with capture(model, [layer]) as acts:
                out = forward(*xs)
        finally:
            probe.remove()
        if layer not in acts or acts[layer].dim() < 2:
            raise ValueError(f"Expected module {layer!r} to output a tensor [N, U, ...] with a unit dimension")
        h = acts[layer]
        tidx = resolve_target(out, target)
        f0 = gather_target(out, tidx)
        units = torch.as_tensor(ivs[0].units if ivs[0].units is not None else range(h.shape[1]), device=h.device)
        if int(units.max()) >= h.shape[1]:
            raise ValueError(f"Expected `units` in [0, {h.shape[1] - 1}] for layer {layer!r} but got {units.tolist()}")
        nu, k = units.numel(), len(ivs)
        # the fx suffix takes the module's tensor output; a tuple output keeps the full-forward path
        suffix = suffix_module(model, layer) if use_suffix and raw_kind and issubclass(raw_kind[0], Tensor) else None

        def split(idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            ku, s = idx // n, idx % n
            return ku // nu, units[ku % nu], s

        if suffix is not None:
            rows = rows_per_pass(suffix, (h,), max_batch_size)

            def evaluate(idx: Tensor) -> Tensor:
                kk, u, s = split(idx)
                hr = h[s]
                return gather_target(forward.select(suffix(replace_units(hr, u, _row_values(ivs, kk, hr)))), tidx[s])

        else:
            rows = rows_per_pass(model, xs, max_batch_size, forward=forward)

            def evaluate(idx: Tensor) -> Tensor:
                kk, u, s = split(idx)
                handle = module.register_forward_hook(
                    lambda _m, _i, o: replace_output(o, replace_units(ho := module_output(o, layer), u, _row_values(ivs, kk, ho)))
                )
                try:
                    return gather_target(forward(*(x[s] for x in xs), rows=s), tidx[s])
                finally:
                    handle.remove()

        curve = map_rows(k * nu * n, rows, evaluate, h.device).view(k, nu, n)
    if k == 1:
        return (f0.unsqueeze(0) - curve[0]).T.contiguous()
    return (curve.max(0).values - curve.min(0).values).T.contiguous()
