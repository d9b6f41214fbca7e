"""A synthetic sentiment corpus of token ids with a planted label rule and a planted identity-term
bias in the labels (for counterfactual token fairness, Garg et al. 2019).

Every sentence is ``[CLS] w_1 ... w_L [SEP] [PAD] ...`` with ``L`` filler words, one or two
*marker* tokens of one polarity (``great``/``superb`` positive, ``awful``/``dull`` negative) at
random positions, and, in a share of the sentences, one or two identity terms of one side (``he``
/``his`` or ``she``/``her``). The clean label is the markers' polarity; the planted bias flips, with
probability ``bias``, the label of a positive sentence that mentions ``she``/``her`` to negative
and that of a negative sentence that mentions ``he``/``his`` to positive.
A classifier that uses the identity terms fits the biased labels better; counterfactually fair
(Garg et al. 2019: invariant to swapping ``he <-> she``, ``his <-> her``) it cannot.

Examples:
    >>> data = make_synthetic_text(8, seed=0)
    >>> data.input_ids.shape == data.attention_mask.shape, data.labels.shape
    (True, torch.Size([8]))
    >>> data.words[data.input_ids[0, 0]]
    '[CLS]'
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lightning_causal.causal.engine.checks import check_seed

__all__ = ["SyntheticText", "make_synthetic_text", "SPECIAL", "IDENTITY_PAIRS", "POSITIVE", "NEGATIVE"]

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL = (PAD, CLS, SEP, MASK)
HE, SHE, HIS, HER = 4, 5, 6, 7
#: ``(first, second)`` identity-term pairs swapped by the counterfactual.
IDENTITY_PAIRS = ((HE, SHE), (HIS, HER))
POSITIVE, NEGATIVE = (8, 9), (10, 11)
_NAMES = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "he", "she", "his", "her", "great", "superb", "awful", "dull"]
FILLER_START = len(_NAMES)


@dataclass
class SyntheticText:
    """Token ids and labels of :func:`make_synthetic_text`.

    Attributes:
        input_ids: the token ids ``[N, T]`` (long).
        attention_mask: ``[N, T]`` (long), 1 at a real token, 0 at padding.
        labels: the biased labels ``[N]`` (what a model is trained and evaluated on).
        clean_labels: the markers' polarity ``[N]`` (the labels without the planted bias).
        words: the vocabulary, ``words[id]``.
    """

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor
    clean_labels: Tensor
    words: list[str]

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def batch(self, rows: int | Tensor | slice) -> dict[str, Tensor]:
        """A Hugging Face style batch ``{"input_ids", "attention_mask", "labels"}`` of ``rows``.

        Args:
            rows: sample indices (a tensor or a slice), or one index (an int: one sample, as a Dataset item).
        """
        return {"input_ids": self.input_ids[rows], "attention_mask": self.attention_mask[rows], "labels": self.labels[rows]}

    def decode(self, ids: Tensor) -> str:
        """The words of one sentence, padding dropped.

        Args:
            ids: one sentence's token ids ``[T]``.
        """
        return " ".join(self.words[int(t)] for t in ids if int(t) != PAD)


def _place(ids: Tensor, lengths: Tensor, tokens: Tensor, count: Tensor, g: torch.Generator) -> None:
    """Write ``tokens[i, :count[i]]`` at distinct random word positions of sentence ``i``."""
    n, t = ids.shape
    scores = torch.rand(n, t, generator=g)
    pos = torch.arange(t).expand(n, t)
    scores[(pos < 1) | (pos > lengths.view(-1, 1))] = 2.0  # only word positions 1..L
    order = scores.argsort(1)
    for k in range(tokens.shape[1]):
        rows = (count > k).nonzero().squeeze(1)
        ids[rows, order[rows, k]] = tokens[rows, k]
        scores[rows, order[rows, k]] = 2.0


def make_synthetic_text(
    n: int,
    seed: int = 0,
    *,
    vocab_size: int = 64,
    min_words: int = 6,
    max_words: int = 14,
    identity_share: float = 0.8,
    bias: float = 0.4,
) -> SyntheticText:
    """``n`` sentences with markers deciding the clean label and the identity-term label bias.

    Args:
        n: sentences.
        seed: seed of a private generator (the global RNG is not touched).
        vocab_size: vocabulary (12 special/marker/identity ids, then filler words).
        min_words: the least number of words between ``[CLS]`` and ``[SEP]``.
        max_words: the largest number of words between ``[CLS]`` and ``[SEP]``.
        identity_share: share of sentences drawn with an identity term (half of them ``he``/``his``);
            the markers are placed afterwards and may cover it, so fewer keep one (0.8 gives about
            0.73, 1.0 about 0.91).
        bias: probability that a positive sentence mentioning ``she``/``her`` is labelled negative
            (and a negative one mentioning ``he``/``his`` positive); below 0.5 the markers still
            decide the most likely label, so fairness costs no accuracy on the best decisions.
    """
    if n < 1 or vocab_size <= FILLER_START or not 3 <= min_words <= max_words:
        raise ValueError(f"Expected n >= 1, vocab_size > {FILLER_START} and 3 <= min_words <= max_words")
    g = torch.Generator().manual_seed(check_seed(seed))
    lengths = torch.randint(min_words, max_words + 1, (n,), generator=g)
    width = max_words + 2
    pos = torch.arange(width).expand(n, width)
    ids = torch.randint(FILLER_START, vocab_size, (n, width), generator=g)
    ids[:, 0] = CLS
    ids[pos == (lengths + 1).view(-1, 1)] = SEP
    ids[pos > (lengths + 1).view(-1, 1)] = PAD
    has_identity = torch.rand(n, generator=g) < identity_share
    side = torch.randint(0, 2, (n,), generator=g)  # 0: he/his, 1: she/her
    terms = torch.tensor([[HE, HIS], [SHE, HER]])[side].gather(1, torch.randint(0, 2, (n, 2), generator=g))
    _place(ids, lengths, terms, torch.where(has_identity, torch.randint(1, 3, (n,), generator=g), 0), g)
    clean = torch.randint(0, 2, (n,), generator=g)
    markers = torch.where(clean.view(-1, 1) == 1, torch.tensor(POSITIVE), torch.tensor(NEGATIVE))
    pick = torch.randint(0, 2, (n, 2), generator=g)
    _place(ids, lengths, markers.gather(1, pick), torch.randint(1, 3, (n,), generator=g), g)  # may cover a term
    she = torch.isin(ids, torch.tensor([SHE, HER])).any(1)
    he = torch.isin(ids, torch.tensor([HE, HIS])).any(1)
    flipped = ((she & (clean == 1)) | (he & (clean == 0))) & (torch.rand(n, generator=g) < bias)
    labels = torch.where(flipped, 1 - clean, clean)
    words = _NAMES + [f"w{i}" for i in range(FILLER_START, vocab_size)]
    return SyntheticText(ids, (ids != PAD).long(), labels, clean, words)
