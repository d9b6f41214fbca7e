"""Units of a layer whose rows every sample shares: a zero-shot classifier's text tower over its class prompts.

A CLIP-like zero-shot classifier embeds its ``C`` class prompts once per forward pass
(``logits = scale * image @ prompts.T``, the prompts' token ids kept as a buffer): a layer of its text
tower returns ``[C, ...]`` whatever the samples, the same rows for one sample, for another and for
both together (:func:`~lightning_causal.causal.engine.folded_rows.check_sample_major` with
``shared_ok=True`` tells them from a fold of ``k`` rows per sample). So does, with one row, a
hypernetwork's weights made from one task embedding or a position embedding of ``position_ids``
``[1, T]`` (``[1, ...]`` for a probe of several samples, which the prefix cache refuses and
:func:`~lightning_causal.causal.engine.folded_rows.shared_rows` then finds shared). Such a layer holds
no row of a sample that an estimator could set apart from the others; its unit is a column of every
shared row. Two samples only show it: each clean pass of the probe must give the layer those rows again
(:func:`check_rows_shared`), or the layer is refused: rows pooled over the batch (a set model, prototypes or
attention over the batch) that the two samples compared happen to give the same input.

``do(h_u := a)`` there sets unit ``u`` in every shared row at once, at every call of the layer in the
pass, which is the same intervention for every sample: the probe's samples run as they are, one pass
per (intervention, unit) and chunk of the probe, never one per sample, and no row is expanded. The
effect on sample ``i`` is ``f_t(x_i) - f_t(x_i | do(h_u := a))`` (with a do-grid, CARE's range over
its values), as :func:`~lightning_causal.causal.effects.unit_effects.unit_effects` reports it for a
layer of one row per sample. What the interventions mean on shared rows:

- ``Zero``, ``SetTo`` (a scalar, one value per unit, or one row's shape, the same for every shared row)
  and ``Scale`` act on each shared row as on a sample's row;
- ``MeanOf(reference)`` sets the unit, in every shared row, to its mean over ``reference``'s rows (per
  element, as for any layer): recorded from the layer (``capture``) on any samples, those rows are the
  ``C`` shared rows of every pass, so the mean over the probe's passes and the mean over the shared rows
  are one value, the unit's mean over the class prompts (mean ablation of a text unit: every prompt's
  unit set to that mean);
- ``Resample`` and ``Patch`` are refused: they draw or pair a donor row per sample, and the shared rows
  are no sample's;
- the first-order estimates (``method="attribution"``/``"atp"``, ``screen``) are refused: their
  gradients are taken per sample row, and one shared row's gradient holds every sample's.

A model that draws random numbers in eval mode runs its passes with common random numbers
(:class:`~lightning_causal.causal.engine.noise.CommonNoise`: a sample draws the same noise in its clean
and intervened passes); a deterministic one runs the same blocks of samples, no generator touched.
The causal graph, the layer map and Captum's layer methods read a unit per sample row and refuse
such a layer, naming this path (:func:`~lightning_causal.causal.engine.unit_sites.check_samples_first`).

Examples:
    >>> import torch
    >>> from torch import nn
    >>> class ZeroShot(nn.Module):  # 3 class prompts of 2 features: the text tower's rows serve every sample
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.text = nn.Identity()
    ...         self.register_buffer("prompts", torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    ...     def forward(self, x):
    ...         return x @ self.text(self.prompts).T
    >>> from lightning_causal.causal import unit_effects
    >>> unit_effects(ZeroShot(), torch.tensor([[2.0, 3.0]]), "text", target=2)  # logit 2 = 2 * u0 + 3 * u1
    tensor([[2., 3.]])
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import Tensor

from lightning_causal.causal.engine.finite import check_finite_samples
from lightning_causal.causal.engine.folded_rows import same_rows
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.intervention_hooks import capture, intervene
from lightning_causal.causal.engine.interventions import Intervention, Patch, Resample
from lightning_causal.causal.engine.noise import CommonNoise
from lightning_causal.causal.engine.state import gather_target, model_devices, resolve_target
from lightning_causal.causal.engine.units import Layout, resolve_layout, selected_units

__all__ = ["SHARED_PATH", "SHARED_REASON", "check_rows_shared", "check_shared_interventions", "shared_unit_effects"]

#: ``UnitEffectsInfo.path`` of a layer whose rows every sample shares, and its ``reason``
SHARED_PATH = "shared"
SHARED_REASON = ("{layer!r} holds {rows} row(s) every sample shares: each unit set in all of them, one pass per unit"
                 )  # a line of the text card's notes, which cut at 160: whole for a layer name of 70 characters


def check_shared_interventions(layer: str, ivs: Sequence[Intervention], shape: Sequence[int], method: str,
                               screen: int | None) -> None:
    """Refuse what rows every sample shares (``shape``: the layer's output, ``[C, ...]`` in every pass) cannot answer:
    the first-order estimates and interventions that pair a donor row with each sample (``Resample``, ``Patch``)."""
    rows = f"layer {layer!r}, whose output {list(shape)} holds the same {shape[0]} rows for every sample (rows of its own "
    rows += "that the samples share: a zero-shot classifier's text tower over its class prompts, a hypernetwork's weights)"
    if method != "exact" or screen is not None:
        raise ValueError(
            f"Expected method='exact' without `screen` for {rows}, but got method={method!r}, screen={screen!r}: the "
            "first-order estimates take a gradient per sample row, and a shared row's gradient sums every sample's. "
            "Run the exact effects (each unit set in every shared row, one pass per unit and chunk of the probe)")
    bad = [type(iv).__name__ for iv in ivs if isinstance(iv, (Resample, Patch))]
    if bad:
        raise ValueError(
            f"Expected Zero, SetTo, Scale or MeanOf interventions for {rows}, but got {bad[0]}: it draws or pairs a "
            "donor row per sample, and the shared rows are no sample's. Pass MeanOf(reference) (the unit's mean over "
            "the shared rows) or SetTo(values)")


def check_rows_shared(layer: str, shared: Tensor, got: Tensor, where: str) -> None:
    """Refuse ``layer`` where a pass of ``where`` gave it other rows (``got``, its last call) than the two samples alone
    and together (``shared``, :func:`~lightning_causal.causal.engine.folded_rows.shared_rows`): rows that depend on the
    batch's samples (a set model pooling its batch, prototypes or attention over the batch), which two samples that give
    the layer the same input showed as shared. Setting a unit there would be measured on each chunk's own rows."""
    if not same_rows(got, shared):
        raise ValueError(
            f"Expected layer {layer!r} to hold the same rows in every pass, as two probe samples alone and together gave "
            f"it ({list(shared.shape)}, rows every sample shares: a zero-shot classifier's class prompts), but a pass of "
            f"{where} gave {list(got.shape)} other rows: its rows depend on the samples of the batch (a set model pooling "
            "its batch, prototypes or attention over the batch), and those two samples give it the same input. Its units "
            "belong to no sample: read them with `intervene` on the whole probe, one pass per unit, or name a layer that "
            "holds one row per sample")


def shared_unit_effects(forward: Forward, xs: tuple[Tensor, ...], layer: str, ivs: Sequence[Intervention],
                        shape: Sequence[int], target: int | Tensor | None, rows: int,
                        noisy: bool, shared: Tensor) -> tuple[Tensor, Tensor, Layout, int]:
    """``[N, U]`` effects of setting each unit of ``layer`` (output ``shape`` ``[C, ...]``, the same rows for every
    sample, ``shared`` as two samples gave them) in every shared row, with the selected units ``[U]``, their layout and
    the layer's calls per pass: one pass of ``rows`` samples at
    most per (intervention, unit) and chunk of the probe, the clean outputs from one pass per chunk (``noisy``: each
    chunk's passes from one seed, :class:`~lightning_causal.causal.engine.noise.CommonNoise`). Called inside the
    caller's :func:`~lightning_causal.causal.engine.state.audit_mode` (modes, gradients, RNG restored); the
    interventions' hooks are removed after every pass, also on exceptions (:func:`intervene`). Each clean pass's rows
    (the layer's last call) are compared with ``shared`` first (:func:`check_rows_shared`)."""
    layout = resolve_layout(shape, ivs[0].unit_dim, ivs[0].num_heads)
    device = xs[0].device
    units = selected_units(ivs[0].units, layout, layer, device)
    blocks = CommonNoise(xs[0].shape[0], rows, model_devices(forward.model), seeded=noisy)
    calls, last = 0, None  # the layer's calls in the clean passes (each is intervened on: `intervene` hooks every call)

    def keep(_name: str, out: Tensor) -> Tensor:
        nonlocal calls, last
        calls, last = calls + 1, out.clone()
        return out.new_empty(0)

    def clean_pass(s: Tensor) -> Tensor:
        """The clean output of samples ``s``; the layer's rows there (its last call) compared with the two samples'."""
        nonlocal last
        last = None
        out = forward(*(x[s] for x in xs), rows=s)
        if last is not None:
            check_rows_shared(layer, shared, last, f"probe samples {int(s[0])} to {int(s[-1])}")
        return out

    with capture(forward.model, [layer], keep=keep, warn_repeats=False):
        clean = blocks.clean(clean_pass, device)
    tidx = resolve_target(clean, target)
    check_finite_samples(xs, gather_target(clean, tidx))
    per_unit = [copy.copy(iv) for iv in ivs for _ in range(units.numel())]  # row b: intervention b // U, unit b % U
    for b, iv in enumerate(per_unit):
        iv.units = [int(units[b % units.numel()])]

    def evaluate(b: int, s: Tensor) -> Tensor:
        with intervene(forward.model, {layer: per_unit[b]}):
            return gather_target(forward(*(x[s] for x in xs), rows=s), tidx[s])

    curve = blocks.rows(len(per_unit), evaluate, device).view(len(ivs), units.numel(), -1)
    if len(ivs) == 1:
        effects = gather_target(clean, tidx).unsqueeze(0) - curve[0]
    else:
        effects = curve.max(0).values - curve.min(0).values
    return effects.T.contiguous(), units, layout, max(1, calls // blocks.count)
