"""A cheap check that autograd sees every path from a site (a layer's output, a frontier, the
inputs) to the model's output, run before the first-order estimates are trusted.

The first-order estimates (``method="atp"``, ``"attribution"``, ``screen=``) follow autograd. A
forward that cuts the gradient on *part* of the computation after the site (a ``.detach()`` on
one branch, a ``torch.no_grad()`` block whose result feeds the output, a straight-through
estimator) makes autograd miss that path while the values still flow: the estimates are then
silently wrong. (A complete cut, no gradient at all, is refused by
:func:`~lightning_causal.causal.effects.unit_attribution.call_gradients`.)

On two probe rows and two random directions ``d = v ⊙ r`` (per call of the site: the value ``v``
times random factors ``r``, one per channel, the same over positions, for a layer's output or a
frontier of 3 or more dimensions; one per element otherwise), the directional derivative
autograd gives, ``2t·(∇f·d)``, is compared with the central difference ``f(v + t d) − f(v − t d)``
of the output. On a model that autograd sees whole their relative gap is ``O(t²)`` (curvature)
plus the output's rounding over the change (float32: ~1e-7 of ``|f|`` over a change of ~1e-3 of
it, ~1e-4); a missed path leaves a gap of the missed path's share of the derivative, whatever
``t``. Non-differentiable points and rounding are kept from counting four ways:

- ties: zeros (ReLU's dead units) do not move along ``v ⊙ r``, and values that are equal within
  a channel (the blank background of an image, tied maxima of max pooling) move alike, so they
  stay tied; with a Gaussian direction scaled to the value's size the check fired on 7 of 192
  layer/seed/method calls of a batch-norm DigitsCNN and a ReLU MLP on digits, with ``v ⊙ r`` on none;
- kinks (ReLU) crossed at the larger step: the gap of a probe is the smallest of those at its
  steps, ``t = 1e-3``, ``1e-4`` and ``3e-4`` (``1e-5``, ``1e-6`` and ``3e-6`` in float64), each taken only while a
  probe shows a gap;
- rounding: a probe counts where its signed shares ``(fd − lin) / max(|fd|, |lin|)`` agree over the steps (the
  same sign, parting by at most :data:`AGREE` of the largest). A missed path misses the same share at every step; an
  output computed as the difference of terms larger than itself (a physics-informed network's residual
  ``u_t − u_xx`` by ``torch.autograd.grad`` in forward, in float32) is rounded at the scale of those terms, a
  difference ``fd − lin`` of about the same size at every step: a share that grows as ``1/t``, with a sign of its
  own (a trained PINN's residual on 16 rows: gaps of up to 9% at ``1e-3`` and 17% at ``1e-4``, a probe's shares
  0.055 then -0.43; no gap in float64). Where they part, a probe still counts if its share at the largest step, the
  least rounded, stands clear of its rounding: ``|s_0| − CLEAR · max_k |s_k − s_0| t_k / t_0 > TOLERANCE``
  (:data:`CLEAR` = 3; a detached share 0.23 of such a residual: -0.52 then -0.72). Where the terms are more
  than ~100 times the output and its change over the steps is below their rounding (the output does not move), the
  shares agree (-1 at every step, as a straight-through rounding's) and the check still warns;
- a probe whose forward and backward differences, ``f(v + t d) − f(v)`` and ``f(v) − f(v − t d)``,
  differ by more than :data:`KINK` straddles a kink: it counts as no gap (on a differentiable
  model they differ by ``O(t)`` relatively; a missed path moves both alike).

The warning fires when at least two of the four probes differ by more than :data:`TOLERANCE`
(5%: no plain model reached it, a detached branch was measured to cost tens of percent). Half
precision, bfloat16 and models that draw noise (two clean passes that differ) are skipped. Complex values (an STFT
input, a layer returning ``torch.fft`` frames) are checked as their real and imaginary parts: the factors ``r`` are
complex (a change of phase as well as of size; zeros and ties stay), the step is that of the real dtype
(``complex64``: float32's) and autograd's derivative along ``d`` is ``Re(conj(g)·d)``
(:func:`~lightning_causal.causal.engine.first_order.first_order_change`, what the estimates take). Cost:
one forward and backward pass and five forward passes, each on two rows (two more for each further step, taken
while a probe shows a gap).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.first_order import first_order_change
from lightning_causal.causal.engine.leaf_gradients import has_reentrant_checkpoint, leaf_grads
from lightning_causal.causal.engine.live_values import close
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["TOLERANCE", "check_gradient_path"]

TOLERANCE = 0.05
"""Relative gap between the autograd and the central-difference directional derivatives above
which a probe counts as missing a path."""

KINK = 0.01
"""Relative gap between the forward and the backward difference above which a probe straddles a
kink or a tie and says nothing (on a differentiable model they differ by ``O(t)``: ~1e-3)."""

AGREE = 0.25
"""How far the signed gaps of one probe at its steps may part, as a share of the largest, for the probe to count."""

CLEAR = 3.0
"""How many times its rounding (estimated from the further steps' shares, scaled by their steps) the share of a probe at
the largest step must exceed :data:`TOLERANCE` by to count where the shares over the steps part."""

_STEPS = {torch.float32: (1e-3, 1e-4, 3e-4), torch.float64: (1e-5, 1e-6, 3e-6)}
_RATIOS = (1.0, 0.1, 0.3)  # each step over the largest (both dtypes)
_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}  # complex values: their parts' steps

Edit = Callable[[int, Tensor], Tensor]


def _direction(v: Tensor, gen: torch.Generator, per_channel: bool) -> Tensor:
    """``v`` times random factors: one per element, or (``per_channel``, ``v`` of 3 or more
    dimensions) one per row and index of dimension 1, the same over the rest. Values that are equal
    within a channel (a blank region of an image) stay equal: ties (max pooling) are kept. Complex ``v``: complex
    factors (real and imaginary parts of variance 1/2), which turn the phase as well as scale the size."""
    shape = v.shape[:2] if per_channel and v.dim() > 2 else v.shape
    r = torch.randn(shape, generator=gen, dtype=torch.complex128 if v.is_complex() else torch.float64)
    r = r.to(device=v.device, dtype=v.dtype)
    return v.detach() * r.view(*shape, *([1] * (v.dim() - len(shape))))


def _moved(run: Callable[[Edit], Tensor], ds: list[Tensor], step: float) -> Tensor:
    """The output with every call's value moved by ``step`` times its direction."""
    return run(lambda k, v: v + step * ds[k] if k < len(ds) and ds[k].shape == v.shape else v)


def probe_gaps(run: Callable[[Edit], Tensor], directions: int = 2, per_channel: bool = False,
               model: nn.Module | None = None) -> Tensor | None:
    """Relative gaps ``[directions, rows]`` between the autograd and the central-difference
    directional derivatives of ``run`` (the target outputs ``[rows]`` with ``edit(k, v)`` applied to
    the ``k``-th value at the site), 0 for a probe whose one-sided differences disagree (a kink);
    ``None`` where the check does not apply. Through a reentrant activation checkpoint (which refuses
    ``torch.autograd.grad``) the gradient is taken by ``backward()`` as the estimates take it
    (:func:`~lightning_causal.causal.engine.leaf_gradients.leaf_grads`) where ``model`` is given (its parameters'
    ``.grad`` are kept); without it the check does not apply there (found by a walk of the graph)."""
    values: list[Tensor] = []
    leaves: list[Tensor] = []

    def grab(k: int, v: Tensor) -> Tensor:
        values.append(v.detach())
        leaves.append(torch.zeros_like(v, requires_grad=True))
        return v + leaves[-1]

    with torch.enable_grad():
        f = run(grab)
        if not values or not f.requires_grad or any(_REAL.get(v.dtype, v.dtype) not in _STEPS or v.dim() == 0 for v in values):
            return None
        total = f.sum()
        if model is not None:  # torch.autograd.grad, or backward() through a reentrant checkpoint
            grads = leaf_grads(total, leaves, model, allow_unused=True)
        elif has_reentrant_checkpoint(total):  # which refuses .grad(); no model whose parameters' .grad to keep
            return None
        else:
            grads = torch.autograd.grad(total, leaves, allow_unused=True)
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
            ds = [_direction(v, gen, per_channel) for v in values]
            # Re(conj(g) d) of complex values: autograd's g of a real f is df/dRe + i df/dIm
            changes = (first_order_change(d, g) for g, d in zip(grads, ds) if g is not None)
            slope = sum((c.flatten(1).sum(1) if c.dim() > 1 else c) for c in changes)
            gap, share = [], []  # at each step: the gap (NaN at a kink) and the signed share
            for t in _STEPS[_REAL.get(values[0].dtype, values[0].dtype)]:
                up, down = _moved(run, ds, t) - clean, clean - _moved(run, ds, -t)
                fd, lin = up + down, 2 * t * slope
                scale = torch.maximum(fd.abs(), lin.abs())
                share.append(torch.where(scale > 0, (fd - lin) / scale, torch.zeros_like(scale)))
                # one-sided differences that disagree: a kink or a tie (ReLU, max pooling) on the segment,
                # where no derivative exists to compare with: the probe says nothing
                kink = (up - down).abs() > KINK * torch.maximum(up.abs(), down.abs()) + floor
                gap.append(torch.where(kink, torch.full_like(scale, float("nan")), (fd - lin).abs() / (scale + floor)))
                if not bool((_agreed(gap, share) > TOLERANCE).any()):
                    break  # a probe without a gap at this step, or whose shares part, says nothing
            gaps.append(_agreed(gap, share).double())
    return torch.stack(gaps)


def _agreed(gap: list[Tensor], share: list[Tensor]) -> Tensor:
    """The gap of each probe over the steps so far: the smallest, where the signed shares ``(fd − lin) / max(|fd|,
    |lin|)`` agree (the same sign, parting by at most :data:`AGREE` of the largest in size), or where the share at the
    largest step stands clear of its rounding: ``|s_0| − CLEAR · max_k |s_k − s_0| t_k / t_0 > TOLERANCE``; 0 otherwise
    or where a step met a kink. A missed path misses the same share at every step; the output's rounding gives a
    difference ``fd − lin`` of its own size at each, a share that grows as ``1/t``, with a sign of its own, so the
    share at the largest step is the least rounded, by about ``t_k / t_0`` of how far a smaller step's parts from it
    (a residual of terms ~50 times its size with a detached share of 0.23: shares -0.52 then -0.72, rounding ~0.02)."""
    g, s = torch.stack(gap), torch.stack(share)
    parted = (s.max(0).values - s.min(0).values) > AGREE * s.abs().max(0).values
    ratio = torch.tensor(_RATIOS[: len(share)], dtype=s.dtype, device=s.device).view(-1, *[1] * (s.dim() - 1))
    rounding = ((s - s[:1]).abs() * ratio).max(0).values
    clear = s[0].abs() - CLEAR * rounding > TOLERANCE
    least = g.min(0).values  # NaN where a step met a kink
    return torch.where((parted & ~clear) | least.isnan(), torch.zeros_like(least), least)


def check_gradient_path(run: Callable[[Edit], Tensor], where: str, estimates: str, fix: str, *, per_channel: bool = False,
                        stacklevel: int | None = None, prefix: str = "", model: nn.Module | None = None) -> bool:
    """Warn (``UserWarning`` naming ``where``, the gap and ``fix``) when autograd misses part of the
    output's dependence on the site; see the module docstring. ``run(edit)``: the target outputs of
    the probe rows with ``edit(k, v)`` applied to the ``k``-th value at the site; ``estimates``:
    what follows autograd there (named in the warning); ``stacklevel``: that of the warning, ``None``
    = the first caller outside this package; ``prefix``: what the warning starts with (who warns);
    ``model``: the model ``run`` calls, through whose reentrant activation checkpoint the check then runs too
    (:func:`probe_gaps`). Returns whether it warned."""
    gaps = probe_gaps(run, per_channel=per_channel, model=model)
    if gaps is None:
        return False
    off = gaps > TOLERANCE
    if int(off.sum()) >= 2:
        warnings.warn(
            f"{prefix}The gradient of the model's output with respect to {where} misses part of how the output depends on it: "
            f"along random directions the derivative autograd gives differs from a central difference of the output by "
            f"up to {float(gaps.max()):.0%} ({int(off.sum())} of {off.numel()} probes above {TOLERANCE:.0%}). A branch "
            f"after it cuts the gradient (a .detach(), a torch.no_grad() block, a straight-through estimator), so "
            f"{estimates}, which follow autograd, are off by about as much: {fix}",
            UserWarning, stacklevel=outside_package() if stacklevel is None else stacklevel + 1)
        return True
    return False
