"""The ``top{k}_share`` scalar of :class:`~lightning_causal.audits.UnitImportanceAudit` (per layer) and
:class:`~lightning_causal.audits.InputEffectAudit`: the share of the strongest units or input groups in the total,
tagged by the audit's ``top_k``, never by the width it met (:func:`add_top_share`); and the note naming the probe samples
whose effects are not finite, where their means are not (:func:`note_non_finite_samples`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_causal.audits.base import AuditResult

__all__ = ["RULED_OUT_FIX", "RULED_OUT_TARGET", "add_top_share", "note_non_finite_samples"]

#: A cause of non-finite effects that every audit's note of them names (this module's, ``CaptumBaseline``'s,
#: ``LayerMapAudit``'s, ``CausalGraphAudit``'s): the class explained by ``target=`` is one the model rules out (a class a
#: class-incremental model has not seen yet), whose output -inf gives -inf − (-inf) = NaN.
RULED_OUT_TARGET = "a class the model rules out with -inf (`masked_fill(~seen, float('-inf'))`) explained by `target=`"
#: The way out of :data:`RULED_OUT_TARGET`.
RULED_OUT_FIX = "explain a class the model can predict"


def add_top_share(result: AuditResult, prefix: str, ranked: Tensor, total: float, top_k: int, count: int) -> str:
    """Put the scalar ``<prefix>top{top_k}_share`` in ``result``: the share of the ``k`` strongest of ``count`` items in
    their ``total``, ``sum(ranked[:k]) / total`` with ``k = max(1, min(top_k, count − 1))`` (a share of all of them is
    1 at every audit). The tag holds ``top_k``, what the audit was asked, not ``k``: a layer grown or pruned between
    audits keeps its series (``head/top10_share`` at 5 units, then at 10). What the width made of it is told beside:
    ``meta["top_shares"][tag] = [k, count]`` (the JSON report; the text card shows ``top10_share (4 of 5) 0.933`` where
    ``k < top_k``: :func:`~lightning_causal.reporting.summary.markdown_summary`). NaN where the total is NaN (effects of
    NaN weights), 0 where it is 0.

    Args:
        result: the audit's result, given the scalar and its ``meta["top_shares"]`` entry.
        prefix: put before the tag: ``"<layer>/"``, or ``""``.
        ranked: the largest items' values, in decreasing order (at least ``k`` of them).
        total: the sum of all ``count`` items' values.
        top_k: the audit's ``top_k``.
        count: how many items there are (units of the layer; input groups present in the probe).

    Returns:
        The tag.

    Examples:
        >>> import torch
        >>> r = AuditResult("units")
        >>> add_top_share(r, "head/", torch.tensor([4.0, 3.0, 2.0]), 10.0, 10, 4)
        'head/top10_share'
        >>> r.scalars["head/top10_share"], r.meta["top_shares"]
        (0.9, {'head/top10_share': [3, 4]})
    """
    k = max(1, min(top_k, count - 1))
    tag = f"{prefix}top{top_k}_share"
    share = float(ranked[:k].sum()) / total if total > 0 else (0.0 if total == 0 else math.nan)
    # the two sums add in other orders: a part equal to the whole (the rest 0, a head's ruled-out classes) came out 1.0000001
    result.scalars[tag] = 1.0 if share > 1.0 else share
    result.meta.setdefault("top_shares", {})[tag] = [k, int(count)]
    return tag


def note_non_finite_samples(result: AuditResult, effects: Tensor, what: str = "the effects") -> list[int]:
    """Add to ``result``'s notes the probe samples whose ``effects`` ``[N, ...]`` hold NaN or infinity: the means over the
    samples (``mean_abs_effect``, an importance, a top share) are then not finite, and the note (which the warning of
    non-finite values repeats) says which samples made them and why: the model's explained output is not finite there
    or under the intervention (a diverged model, a float16 model whose logits pass 65504, where inf - inf is NaN, a
    class the model rules out with -inf, explained by ``target=``, or an input set to one value where the model divides
    by its spread: RevIN's per-window std without an eps, under a group covering the whole window).

    Args:
        result: the audit's result, given the note.
        effects: per-sample effects ``[N, ...]``.
        what: what ``effects`` are, first in the note (``"the effects"``, ``"the unit effects of layer 'fc1'"``).

    Returns:
        The samples named (``[]``: every effect finite, no note).

    Examples:
        >>> r = AuditResult("effects")
        >>> note_non_finite_samples(r, torch.tensor([[1.0, 2.0], [float("inf"), 0.0], [float("nan"), 1.0]]))
        [1, 2]
        >>> r.meta["notes"][0][:49]
        'the effects are not finite in samples [1, 2] of 3'
    """
    bad = ~torch.isfinite(effects.reshape(effects.shape[0], -1)).all(1)
    rows = bad.nonzero().flatten().tolist()
    if rows:
        result.meta.setdefault("notes", []).append(
            f"{what} are not finite in samples {rows[:8]}{' ...' if len(rows) > 8 else ''} of {effects.shape[0]} (the model's "
            "explained output is not finite there or under the intervention: a diverged model, a float16 model whose logits "
            f"pass 65504, where inf - inf is NaN, {RULED_OUT_TARGET}, or an intervention that sets a sample's input to one "
            "value where the model divides by its spread: instance normalisation, RevIN's per-window std without an eps), so "
            "the means over the samples are not; a float16 model's overflow is gone in a float32 copy "
            f"(`copy.deepcopy(model).float()`); {RULED_OUT_FIX}; a group that covers a whole window leaves it one value "
            "under a constant baseline: groups of part of it (one per step) keep its spread")
    return rows
