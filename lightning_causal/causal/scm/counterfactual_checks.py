"""Checks of a counterfactual's inputs against what the model reads: the attention mask's padded
positions (``x_cf`` runs with ``x``'s mask) and the vocabulary of the embedding that looks token
ids up (an id outside it fails deep inside ``nn.Embedding``, or spoils a GPU process).

Used by :func:`~lightning_causal.causal.scm.fairness.counterfactual_fairness_gap`,
:func:`~lightning_causal.causal.scm.fairness.carrier_unit_effects`,
:class:`~lightning_causal.audits.fairness.FairnessAudit` and
:class:`~lightning_causal.repair.fairness.CounterfactualFairnessTerm`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.token_ids import EmbeddingReader, embedding_readers
from lightning_causal.causal.scm.counterfactual import Counterfactual

__all__ = ["keep_padding", "token_readers", "check_counterfactual_ids"]


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
        "word pieces) and leave padding as it is"
    )


def token_readers(forward: Forward, x: Tensor) -> list[EmbeddingReader]:
    """The embeddings that look token ids ``x`` up as they are (one clean row run in eval mode
    without gradient under :func:`~lightning_causal.causal.engine.token_ids.embedding_readers`);
    none for float inputs."""
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        return []
    with audit_mode(forward.model), embedding_readers(forward.model, (x[:1],)) as readers:  # eval: no dropout draws
        forward(x[:1], rows=torch.zeros(1, dtype=torch.long, device=x.device))
    return [r for r in readers if r.size[1:] == tuple(x.shape[1:])]


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
        bad = (x_cf < 0) | (x_cf >= r.num_embeddings)
        if bool(bad.any()):
            raise ValueError(
                f"Expected the counterfactual {counterfactual!r:.120} to give token ids in [0, {r.num_embeddings}) (the "
                f"vocabulary of {r.kind} {r.name!r}, which reads the input) but got {int(x_cf[bad][0])}"
            )
