"""Checks of a counterfactual's inputs against what the model reads: the attention mask's padded
positions (``x_cf`` runs with ``x``'s mask) and the vocabulary of the embedding that looks token
ids up (an id outside it fails deep inside ``nn.Embedding``, or spoils a GPU process).

Used by :func:`~lightning_causal.causal.scm.fairness.counterfactual_fairness_gap`,
:func:`~lightning_causal.causal.scm.fairness.carrier_unit_effects`,
:class:`~lightning_causal.audits.fairness.FairnessAudit` and
:class:`~lightning_causal.repair.fairness.CounterfactualFairnessTerm`; a per-position counterfactual where no padding
is known (:func:`warn_padding_from_features`).
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.token_ids import (
    EmbeddingReader,
    code_position,
    code_range_words,
    code_values,
    codes_outside,
    embedding_readers,
    warn_codes_outside,
)
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.scm.counterfactual import Counterfactual

__all__ = ["FEATURE_PADDING_FIX", "keep_padding", "warn_padding_from_features", "token_readers", "counterfactual_readers", "check_counterfactual_ids"]

_CODE_ROWS = 64  # the clean rows a float input's code columns are matched on


def keep_padding(counterfactual: Counterfactual, x: Tensor, x_cf: Tensor, padding: Tensor) -> Tensor:
    """``x_cf`` with the positions in ``padding`` (broadcastable to ``x``) as in ``x`` where the
    counterfactual is per-position (a token swap); any other counterfactual that changes them is
    refused with a ``ValueError``: ``x_cf`` runs with ``x``'s attention mask.

    Examples:
        >>> from lightning_causal.causal.scm.token_swap import TokenSwap
        >>> x, pad = torch.tensor([[5, 2, 5]]), torch.tensor([[False, False, True]])
        >>> keep_padding(TokenSwap([(5, 7)]), x, torch.tensor([[7, 2, 7]]), pad)
        tensor([[7, 2, 5]])
    """
    pad = padding.to(x.device).expand_as(x)
    if getattr(counterfactual, "per_position", False):
        return torch.where(pad, x, x_cf)
    moved = (x_cf != x) & pad
    if not bool(moved.any()):
        return x_cf
    rows = moved.reshape(x.shape[0], -1).any(1).nonzero().squeeze(1)
    raise ValueError(
        f"Expected the counterfactual {counterfactual!r:.80} to leave padded positions (attention mask 0) as they are, "
        f"but it changed {int(moved.sum())} of them in rows {rows[:5].tolist()}; x_cf runs with x's attention mask, "
        "so tokens written there are not read. Keep every sentence's length (pair terms with the same number of "
        "word pieces) and leave padding as it is; a callable that maps each position on its own (a flip of an attribute "
        "x[..., k] of every item or node): CallableCounterfactual(fn, per_position=True), whose padded positions are "
        "then kept as in x"
    )


#: the way out for a model that reads its padding from the features, where no mask tells a per-position flip of it
FEATURE_PADDING_FIX = (
    "a model that reads its padding from the features (its all-zero positions, no mask) keeps it where the flip is "
    "multiplied by that rule, `CallableCounterfactual(lambda x: fn(x) * (x != 0).any(-1, keepdim=True), "
    "per_position=True)`, which leaves the all-zero positions as in x")


def warn_padding_from_features(counterfactual: Counterfactual, x: Tensor, x_cf: Tensor) -> bool:
    """Warn where a per-position counterfactual (``per_position=True``) changes positions of ``x`` ``[N, T, F]`` whose
    features are all 0 and no padding of ``x`` is known (no ``attention_mask`` or ``lengths``, :func:`keep_padding`
    not called): its padded positions are kept only from a mask, so for a model that reads its padding from the
    features (``(x != 0).any(-1)``) every padded position would become a flipped real one in silence. Real items whose
    features are all 0 are flipped as meant, hence a warning, not a refusal, naming both ways out. Returns whether it
    warned.

    Examples:
        >>> import warnings
        >>> from lightning_causal.causal.scm.counterfactual import CallableCounterfactual
        >>> x = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])  # item 1 padded, read from its features
        >>> flip = CallableCounterfactual(lambda x: torch.cat([x[..., :1], 1 - x[..., 1:]], -1), per_position=True)
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     warned = warn_padding_from_features(flip, x, flip(x))
        >>> warned, "(x != 0).any(-1, keepdim=True)" in str(w[0].message)
        (True, True)
    """
    if not getattr(counterfactual, "per_position", False) or x.dim() < 3 or x_cf.shape != x.shape:
        return False
    moved = (x == 0).all(-1) & (x_cf != x).any(-1)  # [N, T, ...]: all-zero positions the counterfactual changed
    if not bool(moved.any()):
        return False
    rows = moved.reshape(x.shape[0], -1).any(1).nonzero().squeeze(1)
    warnings.warn(
        f"The per-position counterfactual {counterfactual!r:.80} changed {int(moved.sum())} position(s) of x whose "
        f"features are all 0 (rows {rows[:5].tolist()}), and the model is given no padding (`attention_mask` or "
        "`lengths`) to keep as in x: if these are padding, they are now flipped items. Where the model reads its "
        "padding from a mask, pass it as `attention_mask` (additional_forward_args); "
        f"{FEATURE_PADDING_FIX}. Real items whose features are all 0 are flipped as meant",
        UserWarning, stacklevel=outside_package())
    return True


def token_readers(forward: Forward, x: Tensor) -> list[EmbeddingReader]:
    """The embeddings that look token ids ``x`` up as they are (one clean row run in eval mode
    without gradient under :func:`~lightning_causal.causal.engine.token_ids.embedding_readers`), or,
    for float inputs, the codes of a column the model casts to indices (``x[:, 5].long()``; matched on
    up to 64 clean rows, :func:`counterfactual_readers`). A model without an ``nn.Embedding`` runs no pass for float
    inputs (the fairness audits count their passes): codes it reads through ``F.one_hot`` or a table indexed directly
    are not checked here."""
    if x.is_complex() or x.dtype == torch.bool:
        return []
    if x.is_floating_point() and not any(isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for m in forward.model.modules()):
        return []
    k = min(x.shape[0], _CODE_ROWS) if x.is_floating_point() else 1
    with audit_mode(forward.model), embedding_readers(forward.model, (x[:k],)) as readers:  # eval: no dropout draws
        forward(x[:k], rows=torch.arange(k, device=x.device))
    return counterfactual_readers(readers, x)


def counterfactual_readers(readers: list[EmbeddingReader], x: Tensor) -> list[EmbeddingReader]:
    """The ``readers`` whose vocabulary a counterfactual's every value must lie in (an embedding that reads each
    sample's ids whole) or, with ``columns``, the values at those positions: a float code column cast, or the
    positions an embedding reads through a view of part of a sample's ids (``race[:, 0]`` of ``race [N, 1]``); a view
    that cannot be mapped is left to the pass."""
    out = []
    for r in readers:
        if r.columns is not None or r.size[1:] == tuple(x.shape[1:]):
            out.append(r)
            continue
        columns = _view_columns(r, x)
        if columns is not None:
            out.append(dataclasses.replace(r, columns=columns))
    return out


def _view_columns(r: EmbeddingReader, x: Tensor) -> tuple[int, ...] | None:
    """The positions of a sample's flattened ids that the view ``r`` (recorded on leading rows of ``x``) reads."""
    if not x.is_contiguous() or not x.numel():
        return None
    pos = torch.arange(x.numel()).view(x.shape)
    try:
        read = pos.as_strided(r.size, r.stride, r.offset - x.storage_offset())
    except RuntimeError:  # the view reaches beyond x
        return None
    return tuple(int(c) for c in torch.unique(read.reshape(-1) % x[0].numel()))


def check_counterfactual_ids(counterfactual: object, x_cf: Tensor, readers: list[EmbeddingReader]) -> None:
    """Refuse token ids of ``x_cf`` that an embedding reading the ids (``readers``) cannot look up,
    before a pass on ``x_cf`` runs (it would fail deep inside ``nn.Embedding``, or spoil a GPU
    process with a device-side assert), naming the counterfactual and the vocabulary.

    Examples:
        >>> from lightning_causal.causal.engine.token_ids import EmbeddingReader
        >>> from lightning_causal.causal.scm.token_swap import TokenSwap
        >>> reader = EmbeddingReader("emb", "Embedding", 10, 0, (1, 3), (3, 1), 0)
        >>> check_counterfactual_ids(TokenSwap([(4, 12)]), torch.tensor([[1, 12, 3]]), [reader])
        Traceback (most recent call last):
        ...
        ValueError: Expected the counterfactual TokenSwap(pairs=[(4, 12)]) to give token ids in [0, 10) (the vocabulary of Embedding 'emb', which reads the input) but got 12
    """
    for r in readers:
        if r.columns is not None:  # a category code in a float column the model casts, or ids read through a view
            values = code_values(x_cf, r)
            if values.is_floating_point():  # matched on the clean rows' values only: a bucketized or clamped column
                # can match and still take any value; a cast one fails the pass, named after it
                warn_codes_outside(f"`counterfactual` ({counterfactual!r:.120})", x_cf, values, r)
                continue
            bad = codes_outside(values, r)
            if bool(bad.any()):
                raise ValueError(
                    f"Expected argument `counterfactual` ({counterfactual!r:.120}) to set "
                    f"{code_position(x_cf, r.columns[int(bad.nonzero()[0, 1])])} (a category code: {r.kind} {r.name!r} "
                    f"looks it up) to one of its codes, {code_range_words(r, int(bad.nonzero()[0, 1]))}, but got "
                    f"{float(values[bad][0]):g}"
                )
            continue
        bad = (x_cf < 0) | (x_cf >= r.num_embeddings)
        if bool(bad.any()):
            raise ValueError(
                f"Expected the counterfactual {counterfactual!r:.120} to give token ids in [0, {r.num_embeddings}) (the "
                f"vocabulary of {r.kind} {r.name!r}, which reads the input) but got {int(x_cf[bad][0])}"
            )
