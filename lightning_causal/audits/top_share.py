"""The ``top{k}_share`` scalar of :class:`~lightning_causal.audits.UnitImportanceAudit` (per layer) and
:class:`~lightning_causal.audits.InputEffectAudit`: the share of the strongest units or input groups in the total,
tagged by the audit's ``top_k``, never by the width it met (:func:`add_top_share`)."""

from __future__ import annotations

import math

from torch import Tensor

from lightning_causal.audits.base import AuditResult

__all__ = ["add_top_share"]


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
    result.scalars[tag] = float(ranked[:k].sum()) / total if total > 0 else (0.0 if total == 0 else math.nan)
    result.meta.setdefault("top_shares", {})[tag] = [k, int(count)]
    return tag
