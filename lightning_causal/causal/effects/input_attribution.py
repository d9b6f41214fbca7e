"""First-order estimates of input-group effects (attribution patching on the inputs).

For do(x_g := b), the effect ``f_t(x) − f_t(x | do(x_g := b))`` is estimated by

.. math:: \\hat\\delta_g(x) = \\sum_{i \\in g} (x_i - b_i)\\, \\frac{\\partial f_t}{\\partial x_i}(x)

from one forward and one backward pass (gradient × (input − baseline) summed over the group,
the first-order term of the exact effect; exact for a model linear in ``x``).

Complex inputs (STFT frames) take the same estimate with the gradient conjugated:
``Re(conj(∂f_t/∂x_i) · (x_i − b_i))``. For ``z = a + i c`` and a real output, the first-order change of ``f``
when ``z`` moves by ``Δ`` is ``Re(conj(g) Δ)`` with ``g`` autograd's gradient
(:func:`~lightning_causal.causal.engine.first_order.first_order_change`, derived in its module); moving ``z`` to
``b`` (``Δ = b − z``) changes the output by ``Re(conj(g) (b − z))``, so the effect ``f(x) − f(x | do(z := b))`` is
estimated by ``Re(conj(g) (z − b))``: exact for a model linear in ``Re z`` and ``Im z``.

Where the estimate of a feature (group) is 0 at every sample although some sample's value differs from the
baseline (its gradient is exactly 0 there: a flat point, as a prototype head's ``−||x − p||²`` at ``x_i = p_i``),
the estimate cannot tell a feature without effect from one at an extremum: those features alone are set to
the baseline, one batched pass on up to :data:`FLAT_CHECK_SAMPLES` such samples each, and a warning names how many
of them move the output (:func:`_warn_flat_features`).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from lightning_causal.causal.effects.gradient_check import Edit, check_gradient_path
from lightning_causal.causal.engine.ablation import ablate_groups, changed_groups, sample_rows
from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.first_order import first_order_change
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.gradient_cuts import (
    FLAT_STEPS,
    gradient_cut_causes,
    not_float_input,
)
from lightning_causal.causal.engine.leaf_gradients import leaf_grads
from lightning_causal.causal.engine.live_values import close, close_elements
from lightning_causal.causal.engine.padded_reads import explained_target
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.state import gather_target
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["FLAT_CHECK_SAMPLES", "input_attribution_estimates"]

#: samples per feature (of those whose value differs from the baseline) on which a feature whose first-order
#: estimate is 0 at every sample is set to its baseline, to see whether it moves the output
FLAT_CHECK_SAMPLES = 4


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
    raise ValueError(
        "Expected the gradient of the model's output to reach the inputs, on which it depends, but none does: the "
        f"forward cuts it ({gradient_cut_causes(forward.model)}), so every first-order estimate would be 0. Use method='exact'")


def _gradient_on_the_way(forward: Forward, xs: tuple[Tensor, ...], bases: tuple[Tensor, ...], s: Tensor, tidx: Tensor) -> bool:
    """Whether the gradient of the target output is other than 0 halfway from the inputs to the baseline or at the
    baseline: the model is not piecewise constant there (ReLUs off at the inputs and on at the baseline, a flat point)."""
    for t in (0.5, 1.0):
        with torch.enable_grad():
            leaves = tuple((x[s] + t * (sample_rows(b, s).expand_as(x[s]) - x[s])).detach().requires_grad_(True)
                           for x, b in zip(xs, bases))
            f = gather_target(forward(*leaves, rows=s), tidx[s])
            grads = leaf_grads(f.sum(), leaves, forward.model, allow_unused=True) if f.requires_grad else ()
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
        "them, but it is 0 at every sample while the output moves when the inputs are set to the baseline "
        f"({FLAT_STEPS} of the activations, without a straight-through gradient), so every first-order estimate is 0. "
        "Use method='exact'")


def _warn_flat_features(forward: Forward, xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], bases: tuple[Tensor, ...],
                        est: Tensor, tidx: Tensor, clean: Tensor, rows: int) -> None:
    """:class:`~lightning_causal.causal.engine.probe_warnings.ProbeContentsWarning` when features (groups) whose
    estimate is 0 at every sample move the output when set to the baseline: a flat point at these samples (ReLUs off
    at both rows of a dry run say nothing of the whole probe), the category of the other warnings of a gradient 0 at
    the samples (``CaptumBaseline``'s), which :meth:`~lightning_causal.audits.base.Audit.dry_run` ignores. Only those
    features are checked, each on up to :data:`FLAT_CHECK_SAMPLES` samples whose value differs from the baseline there
    (elsewhere the effect is exactly 0), in one batched pass of those rows."""
    num_groups = est.shape[1]
    differs = changed_groups(xs, masks, bases, num_groups)  # [N, G]: setting the group to the baseline changes the sample
    flat = ~est.ne(0).any(0) & differs.any(0)  # [G]: 0 at every sample, yet some sample is not at the baseline
    if not bool(flat.any()):
        return
    first = differs[:, flat].to(torch.int64).cumsum(0).le(FLAT_CHECK_SAMPLES) & differs[:, flat]
    s_idx, g_pos = first.nonzero(as_tuple=True)  # rows (sample, feature): up to FLAT_CHECK_SAMPLES samples per feature
    groups = flat.nonzero().squeeze(1)[g_pos]

    def ablated(r: Tensor) -> Tensor:
        s, g = s_idx[r], groups[r]
        edited = tuple(ablate_groups(x, m, s, g, values=sample_rows(b, s)) for x, m, b in zip(xs, masks, bases))
        with torch.no_grad():
            return gather_target(forward(*edited, rows=s), tidx[s])

    moved = map_rows(len(s_idx), rows, ablated, est.device)
    same = close_elements(moved, clean[s_idx], scale=clean)  # live_values.close's tolerance, row by row
    off = torch.zeros(num_groups, dtype=torch.bool, device=est.device)
    off[groups[~same]] = True
    k = int(off.sum())
    if k:
        shown = off.nonzero().squeeze(1)[:10].tolist()
        warnings.warn(
            f"method='attribution': {k} of {num_groups} input features (groups {shown}{' ...' if k > 10 else ''}) have a "
            "first-order estimate of 0 at every sample, as their gradient is exactly 0 there, while setting them to the "
            "baseline moves the output: the model sits at a flat point in them (an extremum, as a prototype head's "
            "-||x - p||^2 at x = p, or ReLUs off there), where the estimate cannot tell such a feature from one without "
            "effect. Their effects are not 0: use method='exact' (interventions) for them",
            ProbeContentsWarning, stacklevel=outside_package())


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
        TypeError: an input is not floating point, naming its dtype and the ways
            (:func:`~lightning_causal.causal.engine.gradient_cuts.not_float_input`): integers the model casts in its
            first line (PCM audio ``int16``) are read the same as ``inputs.float()``; token ids (``int32``/``int64``)
            are estimated at the embedding layer's output (``unit_effects(..., method='attribution')``); uint8
            pixels and bool masks the model casts inside are read as ``inputs.float()``. Complex inputs take
            ``Re(conj(grad) · (x − b))`` (module docstring).
    """
    if not all(x.is_floating_point() or x.is_complex() for x in xs):
        dtype = next(x.dtype for x in xs if not (x.is_floating_point() or x.is_complex()))
        raise TypeError(f"Expected floating point `inputs` for method='attribution' but got dtype {dtype} "
                        f"({not_float_input(dtype)})")
    n = xs[0].shape[0]
    out = forward(*xs)
    tidx, clean = explained_target(forward, xs, out, target, "Intervening on the inputs")  # as the exact effects do
    rows = max(1, rows_per_pass(forward.model, xs, max_batch_size, forward=forward) // (1 if max_batch_size else 2))

    def estimate(s: Tensor) -> Tensor:
        with torch.enable_grad():
            leaves = tuple(x[s].detach().requires_grad_(True) for x in xs)  # leaves: inputs that require grad too
            f = gather_target(forward(*leaves, rows=s), tidx[s])
            grads = leaf_grads(f.sum(), leaves, forward.model, allow_unused=True) if f.requires_grad else (None,) * len(leaves)
        if all(g is None for g in grads):
            _check_no_gradient_means_no_effect(forward, xs, bases, s, tidx, f)
        out = torch.zeros(len(s), num_groups, dtype=xs[0].real.dtype, device=xs[0].device)  # real for complex inputs
        for x, g, m, b in zip(leaves, grads, masks, bases):
            if g is not None:
                contrib = first_order_change(x.detach() - sample_rows(b, s).expand_as(x), g).reshape(len(s), -1)
                groups = sample_rows(m, s).expand_as(x).reshape(len(s), -1)
                out.scatter_add_(1, groups, contrib.to(out.dtype))
        return out

    out = map_rows(n, rows, estimate, xs[0].device)
    if not bool(out.any()):
        _check_zero_gradient_means_no_effect(forward, xs, bases, tidx, clean)
    _warn_flat_features(forward, xs, masks, bases, out, tidx, clean, rows)
    probe = torch.arange(min(2, n), device=xs[0].device)

    def run(edit: Edit) -> Tensor:
        return gather_target(forward(*(edit(k, x[probe]) for k, x in enumerate(xs)), rows=probe), tidx[probe])

    check_gradient_path(run, "the inputs", "the first-order estimates of method='attribution'", "use method='exact'",
                        model=forward.model)  # through a reentrant checkpoint too
    return out
