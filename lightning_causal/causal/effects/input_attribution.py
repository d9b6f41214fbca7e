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


def _moves(forward: Forward, xs: tuple[Tensor, ...], bases: tuple[Tensor, ...], s: Tensor, tidx: Tensor, f: Tensor,
           baseline_only: bool = False) -> bool:
    """Whether the target output of rows ``s`` moves from ``f`` when every input is set to its baseline (the
    interventions estimated, all at once), or (unless ``baseline_only``) to ``1 - x/2`` or to another row's (the
    rows rolled by one): a step (a nearest-prototype head's argmin) may keep some of them."""
    edits = (lambda x, b: sample_rows(b, s).expand_as(x[s]), lambda x, b: 1.0 - 0.5 * x[s], lambda x, b: x[s].roll(1, 0))
    edits = edits[:1] if baseline_only else edits
    with torch.no_grad():
        for edited in (tuple(edit(x, b) for x, b in zip(xs, bases)) for edit in edits):
            if not close(gather_target(forward(*edited, rows=s), tidx[s]), f.detach()):
                return True
    return False


def _check_no_gradient_means_no_effect(forward: Forward, xs: tuple[Tensor, ...], bases: tuple[Tensor, ...], s: Tensor,
                                       tidx: Tensor, f: Tensor) -> None:
    """No gradient reaches the inputs: right only if the output does not depend on them. A forward
    that cuts it (quantized layers, a step such as ``(h > 0).float()`` or argmin, ``.detach()``,
    ``torch.no_grad()``) while the values flow on would give estimates of 0 for effects that are not: ``ValueError``."""
    if not _moves(forward, xs, bases, s, tidx, f):
        return
    cause = no_gradient_cause(forward.model)
    cause = f"{cause}, or " if cause else ""
    raise ValueError(
        "Expected the gradient of the model's output to reach the inputs, on which it depends, but none does: the "
        f"forward cuts it ({cause}a .detach() or torch.no_grad(), or a step such as (h > 0).float(), argmax or argmin, "
        "one_hot or an integer cast), so every first-order estimate would be 0. Use method='exact'")


def _gradient_on_the_way(forward: Forward, xs: tuple[Tensor, ...], bases: tuple[Tensor, ...], s: Tensor, tidx: Tensor) -> bool:
    """Whether the gradient of the target output is other than 0 halfway from the inputs to the baseline or at the
    baseline: the model is not piecewise constant there (ReLUs off at the inputs and on at the baseline, a flat point)."""
    for t in (0.5, 1.0):
        with torch.enable_grad():
            leaves = tuple((x[s] + t * (sample_rows(b, s).expand_as(x[s]) - x[s])).detach().requires_grad_(True)
                           for x, b in zip(xs, bases))
            f = gather_target(forward(*leaves, rows=s), tidx[s])
            grads = torch.autograd.grad(f.sum(), leaves, allow_unused=True) if f.requires_grad else ()
        if any(g is not None and bool(g.any()) for g in grads):
            return True
    return False


def _check_zero_gradient_means_no_effect(forward: Forward, xs: tuple[Tensor, ...], bases: tuple[Tensor, ...], tidx: Tensor,
                                         f: Tensor) -> None:
    """Every estimate is exactly 0: right only if the interventions change nothing. A model whose
    gradient is 0 at every sample (``torch.round``/``floor``/``sign`` of its activations, without a
    straight-through gradient) while its output moves with the inputs: ``ValueError``, as above. A
    gradient of 0 at the inputs only (ReLUs off there and on at the baseline; a flat point) is the
    first-order estimate's own limit, as on any sample of a ReLU model: its zeros are kept."""
    s = torch.arange(len(f), device=f.device)
    if not _moves(forward, xs, bases, s, tidx, f, baseline_only=True):  # inputs at the baseline: effects and estimates 0
        return
    if _gradient_on_the_way(forward, xs, bases, s, tidx):
        return
    raise ValueError(
        "Expected the gradient of the model's output with respect to the inputs to tell how the output depends on "
        "them, but it is 0 at every sample while the output moves when the inputs are set to the baseline (a "
        "piecewise-constant step such as torch.round, floor or sign of the activations, without a straight-through "
        "gradient), so every first-order estimate is 0. Use method='exact'")


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
        TypeError: an input is not floating point, naming its dtype and the way: token ids have no gradient
            (intervene on the embeddings instead); uint8 pixels and bool masks the model casts inside are read as
            ``inputs.float()``; complex inputs take ``method='exact'``.
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
    clean = gather_target(out, tidx)
    check_finite_samples(xs, clean)
    rows = max(1, rows_per_pass(forward.model, xs, max_batch_size, forward=forward) // (1 if max_batch_size else 2))

    def estimate(s: Tensor) -> Tensor:
        with torch.enable_grad():
            leaves = tuple(x[s].requires_grad_(True) for x in xs)
            f = gather_target(forward(*leaves, rows=s), tidx[s])
            grads = torch.autograd.grad(f.sum(), leaves, allow_unused=True) if f.requires_grad else (None,) * len(leaves)
        if all(g is None for g in grads):
            _check_no_gradient_means_no_effect(forward, xs, bases, s, tidx, f)
        out = torch.zeros(len(s), num_groups, dtype=xs[0].dtype, device=xs[0].device)
        for x, g, m, b in zip(leaves, grads, masks, bases):
            if g is not None:
                contrib = ((x.detach() - sample_rows(b, s).expand_as(x)) * g).reshape(len(s), -1)
                groups = sample_rows(m, s).expand_as(x).reshape(len(s), -1)
                out.scatter_add_(1, groups, contrib.to(out.dtype))
        return out

    out = map_rows(n, rows, estimate, xs[0].device)
    if not bool(out.any()):
        _check_zero_gradient_means_no_effect(forward, xs, bases, tidx, clean)
    probe = torch.arange(min(2, n), device=xs[0].device)

    def run(edit: Edit) -> Tensor:
        return gather_target(forward(*(edit(k, x[probe]) for k, x in enumerate(xs)), rows=probe), tidx[probe])

    check_gradient_path(run, "the inputs", "the first-order estimates of method='attribution'", "use method='exact'")
    return out
