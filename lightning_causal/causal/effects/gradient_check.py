"""A cheap check that autograd sees every path from a site (a layer's output, a frontier, the
inputs) to the model's output, run before the first-order estimates are trusted.

The first-order estimates (``method="atp"``, ``"attribution"``, ``screen=``) follow autograd. A
forward that cuts the gradient on *part* of the computation after the site (a ``.detach()`` on
one branch, a ``torch.no_grad()`` block whose result feeds the output, a straight-through
estimator) makes autograd miss that path while the values still flow: the estimates are then
silently wrong. (A complete cut, no gradient at all, is refused by
:func:`~lightning_causal.causal.effects.unit_attribution.call_gradients`.)

On two probe rows and two random directions ``d`` (per call of the site, scaled per row by the
root mean square of its value), the directional derivative autograd gives, ``2t·(∇f·d)``, is
compared with the central difference ``f(v + t d) − f(v − t d)`` of the output. On a model that
autograd sees whole their relative gap is ``O(t²)`` (curvature) plus the output's rounding over
the change (float32: ~1e-7 of ``|f|`` over a change of ~1e-3 of it, ~1e-4); a missed path leaves
a gap of the missed path's share of the derivative, whatever ``t``. The gap of a probe is the
smaller of those at two steps, ``t = 1e-3`` and ``1e-4`` of the value's scale in float32
(``1e-5``, ``1e-6`` in float64): a ReLU's kink crossed at the larger step is rarely crossed at
the smaller one (a small CNN on digits, whose background pixels all sit at one value next to
a kink, reached 12% at ``t = 1e-2``, 2% at ``1e-3`` and 0.2% at ``1e-4``). A probe whose forward and
backward differences, ``f(v + t d) − f(v)`` and ``f(v) − f(v − t d)``, differ by more than the
tolerance straddles a kink or a tie (max pooling over a blank region: tied maxima at any ``t``),
where the model has no derivative to compare with: it counts as no gap. (On a model that is
differentiable there they differ by ``O(t)`` relatively; a missed path moves both alike.) The warning fires when
at least two of the four probes differ by more than :data:`TOLERANCE` (5%: above the 2% a kink
gave, below the 10% a detached branch was measured to cost). Half precision, bfloat16 and models
that draw noise (two clean passes that differ) are skipped. Cost: one forward and backward pass
and nine forward passes, each on two rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from lightning_causal.causal.engine.live_values import close

__all__ = ["TOLERANCE", "check_gradient_path"]

TOLERANCE = 0.05
"""Relative gap between the autograd and the central-difference directional derivatives above
which a probe counts as missing a path."""

_STEPS = {torch.float32: (1e-3, 1e-4), torch.float64: (1e-5, 1e-6)}

Edit = Callable[[int, Tensor], Tensor]


def _scaled_direction(v: Tensor, gen: torch.Generator) -> Tensor:
    """A random direction shaped as ``v``, each row scaled to ``v``'s root mean square (1 for a row of zeros)."""
    d = torch.randn(v.shape, generator=gen, dtype=torch.float64).to(device=v.device, dtype=v.dtype)
    rms = v.detach().flatten(1).pow(2).mean(1).sqrt() if v.dim() > 1 else v.detach().abs()
    rms = torch.where(rms > 0, rms, torch.ones_like(rms))
    return d * rms.view(-1, *([1] * (v.dim() - 1)))


def _moved(run: Callable[[Edit], Tensor], ds: list[Tensor], step: float) -> Tensor:
    """The output with every call's value moved by ``step`` times its direction."""
    return run(lambda k, v: v + step * ds[k] if k < len(ds) and ds[k].shape == v.shape else v)


def probe_gaps(run: Callable[[Edit], Tensor], directions: int = 2) -> Tensor | None:
    """Relative gaps ``[directions, rows]`` between the autograd and the central-difference
    directional derivatives of ``run`` (the target outputs ``[rows]`` with ``edit(k, v)`` applied to
    the ``k``-th value at the site), 0 for a probe whose one-sided differences disagree (a kink);
    ``None`` where the check does not apply."""
    values: list[Tensor] = []
    leaves: list[Tensor] = []

    def grab(k: int, v: Tensor) -> Tensor:
        values.append(v.detach())
        leaves.append(torch.zeros_like(v, requires_grad=True))
        return v + leaves[-1]

    with torch.enable_grad():
        f = run(grab)
        if not values or not f.requires_grad or any(v.dtype not in _STEPS or v.dim() == 0 for v in values):
            return None
        grads = torch.autograd.grad(f.sum(), leaves, allow_unused=True)
    if all(g is None for g in grads):
        return None  # no gradient at all: call_gradients refuses that (or the output does not depend on the site)
    f = f.detach()
    if not f.is_floating_point() or f.dtype not in _STEPS:
        return None
    gen = torch.Generator().manual_seed(0)
    floor = 100 * torch.finfo(f.dtype).eps * (1 + f.abs())
    gaps = []
    with torch.no_grad():
        clean = run(lambda k, v: v)
        if not close(clean, f):
            return None  # the model draws noise: no difference quotient is meaningful
        for _ in range(directions):
            ds = [_scaled_direction(v, gen) for v in values]
            slope = sum(((g * d).flatten(1).sum(1) if g.dim() > 1 else g * d) for g, d in zip(grads, ds) if g is not None)
            per_step = []
            for t in _STEPS[values[0].dtype]:
                up, down = _moved(run, ds, t) - clean, clean - _moved(run, ds, -t)
                fd, lin = up + down, 2 * t * slope
                gap = (fd - lin).abs() / (torch.maximum(fd.abs(), lin.abs()) + floor)
                # one-sided differences that disagree: a kink or a tie (ReLU, max pooling) on the segment,
                # where no derivative exists to compare with: the probe says nothing
                kink = (up - down).abs() > TOLERANCE * torch.maximum(up.abs(), down.abs()) + floor
                per_step.append(torch.where(kink, torch.zeros_like(gap), gap))
            gaps.append(torch.minimum(*per_step).double())
    return torch.stack(gaps)


def check_gradient_path(run: Callable[[Edit], Tensor], where: str, estimates: str, fix: str, stacklevel: int = 2) -> None:
    """Warn (``UserWarning`` naming ``where``, the gap and ``fix``) when autograd misses part of the
    output's dependence on the site; see the module docstring. ``run(edit)``: the target outputs of
    the probe rows with ``edit(k, v)`` applied to the ``k``-th value at the site; ``estimates``:
    what follows autograd there (named in the warning)."""
    gaps = probe_gaps(run)
    if gaps is None:
        return
    off = gaps > TOLERANCE
    if int(off.sum()) >= 2:
        warnings.warn(
            f"The gradient of the model's output with respect to {where} misses part of how the output depends on it: "
            f"along random directions the derivative autograd gives differs from a central difference of the output by "
            f"up to {float(gaps.max()):.0%} ({int(off.sum())} of {off.numel()} probes above {TOLERANCE:.0%}). A branch "
            f"after it cuts the gradient (a .detach(), a torch.no_grad() block, a straight-through estimator), so "
            f"{estimates}, which follow autograd, are off by about as much: {fix}",
            UserWarning, stacklevel=stacklevel + 1)
