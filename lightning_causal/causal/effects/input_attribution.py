"""First-order estimates of input-group effects (attribution patching on the inputs).

For do(x_g := b), the effect ``f_t(x) − f_t(x | do(x_g := b))`` is estimated by

.. math:: \\hat\\delta_g(x) = \\sum_{i \\in g} (x_i - b_i)\\, \\frac{\\partial f_t}{\\partial x_i}(x)

from one forward and one backward pass (gradient × (input − baseline) summed over the group,
the first-order term of the exact effect; exact for a model linear in ``x``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_causal.causal.effects.gradient_check import Edit, check_gradient_path
from lightning_causal.causal.engine.ablation import sample_rows
from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.finite import check_finite_samples
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.live_values import close
from lightning_causal.causal.engine.quantized import no_gradient_cause
from lightning_causal.causal.engine.state import gather_target, resolve_target

__all__ = ["input_attribution_estimates"]


def _check_no_gradient_means_no_effect(forward: Forward, xs: tuple[Tensor, ...], s: Tensor, tidx: Tensor, f: Tensor) -> None:
    """No gradient reaches the inputs: right only if the output does not depend on them. A forward
    that cuts it (quantized layers, ``.detach()``, ``torch.no_grad()``) while the values flow on
    would give estimates of 0 for effects that are not: ``ValueError``."""
    with torch.no_grad():
        moved = gather_target(forward(*(1.0 - 0.5 * x[s] for x in xs), rows=s), tidx[s])
    if close(moved, f.detach()):
        return
    cause = no_gradient_cause(forward.model)
    cause = f"{cause}, or " if cause else ""
    raise ValueError(
        "Expected the gradient of the model's output to reach the inputs, on which it depends, but none does: the "
        f"forward cuts it ({cause}a .detach() or torch.no_grad()), so every first-order estimate would be 0. "
        "Use method='exact'")


def input_attribution_estimates(
    forward: Forward,
    xs: tuple[Tensor, ...],
    masks: tuple[Tensor, ...],
    bases: tuple[Tensor, ...],
    *,
    num_groups: int,
    target: int | Tensor | None = None,
    max_batch_size: int | None = None,
) -> Tensor:
    """``[N, G]`` first-order estimates of the group effects (call inside ``audit_mode``).

    Warns (:func:`~lightning_causal.causal.effects.gradient_check.check_gradient_path`) when
    autograd misses part of the output's dependence on the inputs (a detached branch).

    Raises:
        TypeError: an input is not floating point (token ids have no gradient; intervene on the
            embeddings instead).
    """
    if not all(x.is_floating_point() for x in xs):
        dtype = next(x.dtype for x in xs if not x.is_floating_point())
        why = ("complex inputs: the first-order estimate of a real output in complex features is not defined here; use "
               "method='exact'" if dtype.is_complex else
               "uint8 pixels or bool masks that the model casts inside: pass inputs.float() (x.float() / 255 inside reads them "
               "the same) or use method='exact'" if dtype in (torch.uint8, torch.bool) else
               "token ids have no gradient")
        raise TypeError(f"Expected floating point `inputs` for method='attribution' but got dtype {dtype} ({why})")
    n = xs[0].shape[0]
    out = forward(*xs)
    tidx = resolve_target(out, target)
    check_finite_samples(xs, gather_target(out, tidx))
    rows = max(1, rows_per_pass(forward.model, xs, max_batch_size, forward=forward) // (1 if max_batch_size else 2))

    def estimate(s: Tensor) -> Tensor:
        with torch.enable_grad():
            leaves = tuple(x[s].requires_grad_(True) for x in xs)
            f = gather_target(forward(*leaves, rows=s), tidx[s])
            grads = torch.autograd.grad(f.sum(), leaves, allow_unused=True) if f.requires_grad else (None,) * len(leaves)
        if all(g is None for g in grads):
            _check_no_gradient_means_no_effect(forward, xs, s, tidx, f)
        out = torch.zeros(len(s), num_groups, dtype=xs[0].dtype, device=xs[0].device)
        for x, g, m, b in zip(leaves, grads, masks, bases):
            if g is not None:
                contrib = ((x.detach() - sample_rows(b, s).expand_as(x)) * g).reshape(len(s), -1)
                groups = sample_rows(m, s).expand_as(x).reshape(len(s), -1)
                out.scatter_add_(1, groups, contrib.to(out.dtype))
        return out

    out = map_rows(n, rows, estimate, xs[0].device)
    probe = torch.arange(min(2, n), device=xs[0].device)

    def run(edit: Edit) -> Tensor:
        return gather_target(forward(*(edit(k, x[probe]) for k, x in enumerate(xs)), rows=probe), tidx[probe])

    check_gradient_path(run, "the inputs", "the first-order estimates of method='attribution'", "use method='exact'")
    return out
