"""Counterfactual token fairness: the counterfactual of a sentence swaps its identity terms
("he" <-> "she", "his" <-> "her"), as Garg et al. 2019 do ("Counterfactual Fairness in Text
Classification through Robustness", AIES)."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from lightning_causal.causal.scm.counterfactual import Counterfactual

__all__ = ["TokenSwap"]


def _token_id(t: object) -> int | None:
    """``t`` as a token id (a Python, NumPy or 0-d tensor integer, not a bool), or ``None``."""
    if isinstance(t, (bool, str, bytes)) or type(t).__name__ == "bool_" or (isinstance(t, Tensor) and t.dtype == torch.bool):
        return None
    try:
        return operator.index(t)  # int, numpy.int64, a 0-d integer tensor
    except TypeError:
        return None


def _pair_hint(pair: tuple, ids: list[int | None]) -> str:
    """What is likely wrong with a refused ``pair`` (its items as token ids: ``ids``)."""
    if any(isinstance(t, str) for t in pair):
        return " (words: look their ids up in the vocabulary, e.g. with a tokenizer's convert_tokens_to_ids)"
    if len(ids) == 2 and ids[0] is not None and ids[0] == ids[1]:
        return (" (one id twice: two words the tokenizer maps to one id, such as its unknown token, or a term that "
                "is not in its vocabulary)")
    return ""


def _word_id(word: str, convert: object, tokenize: object, unk: int | None, special: set[int]) -> int:
    """The token id of ``word``; a word the vocabulary lacks, splits, or holds as a special token raises."""
    pieces = tokenize(word) if callable(tokenize) else [word]
    if len(pieces) != 1:
        raise ValueError(f"Expected every word of argument `pairs` to be one token of the tokenizer's vocabulary but {word!r} "
                         f"is split into the word pieces {pieces}: pair the pieces one to one with another term of as many "
                         "pieces (TokenSwap([(a1, b1), (a2, b2)]) of ids), or choose terms the vocabulary holds whole")
    token = _token_id(convert(pieces[0]))  # type: ignore[operator]
    if token is None or (unk is not None and token == unk):
        raise ValueError(f"Expected every word of argument `pairs` to be in the tokenizer's vocabulary but {word!r} maps to the "
                         f"unknown token (id {token}): a pair holding it would swap every unknown word of every sentence")
    if token in special:
        raise ValueError(f"Expected every word of argument `pairs` to be an identity term but {word!r} is a special token "
                         f"of the tokenizer (id {token})")
    return token


def _check_pairs(pairs: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    try:
        given = [tuple(p) for p in pairs]
    except TypeError as err:
        raise TypeError(f"Expected argument `pairs` to be a sequence of (token id, token id) pairs but got {pairs!r:.80}") from err
    if not given:
        raise ValueError(f"Expected argument `pairs` to be non-empty pairs of two distinct non-negative token ids but got {pairs!r:.80}")
    out = []
    for p in given:
        ids = [_token_id(t) for t in p]
        if len(p) == 2 and any(isinstance(t, (tuple, list, Tensor)) and not (isinstance(t, Tensor) and t.dim() == 0) for t in p):
            raise ValueError(f"Expected argument `pairs` to hold one token id per term but got the pair {p!r:.80}: a term "
                             "of several word pieces is swapped piece by piece, so pair the pieces one to one "
                             "([(a1, b1), (a2, b2)]) where both terms have as many pieces; terms of different lengths cannot "
                             "be swapped in place (a counterfactual keeps each sentence's length and attention mask)")
        if len(p) != 2 or any(t is None or t < 0 for t in ids) or ids[0] == ids[1]:
            raise ValueError(f"Expected argument `pairs` to be non-empty pairs of two distinct non-negative token ids (integers) "
                             f"but got the pair {p!r:.80}" + _pair_hint(p, ids))
        out.append((ids[0], ids[1]))
    flat = [t for p in out for t in p]
    twice = sorted({t for t in flat if flat.count(t) > 1})
    if twice:
        raise ValueError(f"Expected every token id to appear in one pair only but got {out} (token ids {twice} appear more "
                         "than once): a swap exchanges the two terms of each pair both ways, so give each pair once ((a, b), not also "
                         "(b, a)); a chain a→b, b→c is no swap; words the tokenizer maps to one id (its unknown token) "
                         "cannot be told apart")
    return out


class TokenSwap(Counterfactual):
    r"""Swap identity terms in token ids ``[N, T]``: every occurrence of ``a`` becomes ``b`` and of
    ``b`` becomes ``a``, for each pair ``(a, b)``; every other token (and the attention mask) stays.

    The counterfactual token fairness gap (CTF, Garg et al. 2019) of a classifier ``f`` is
    ``E|p_t(x_cf) − p_t(x)|`` over the sentences that contain identity terms
    (:func:`~lightning_causal.causal.scm.fairness.counterfactual_fairness_gap`);
    ``CounterfactualFairnessTerm(TokenSwap(...))`` is their counterfactual logit pairing (CLP).
    Each term must be one token (a whole word in the vocabulary; for a term split into word
    pieces, pair the pieces one to one, or use a callable counterfactual that keeps every sentence's
    length: ``x_cf`` runs with ``x``'s attention mask). Where the model's forward arguments carry an
    attention mask, tokens at padded positions are not swapped (a stale identity term there is no
    part of the sentence) and sentences whose terms lie only there count as unchanged.

    Group metrics compare the sentences that mention only the first terms of the pairs
    (group 0) with those that mention only the second ones (group 1); other sentences belong to
    no group (``-1``).

    Args:
        pairs: ``(a, b)`` token id pairs, e.g. ``[(he, she), (his, her), (man, woman)]`` (Python, NumPy
            or 0-d tensor integers); each id in one pair only. Token ids of any integer dtype are swapped
            (``int16`` or ``uint8`` ids too; the counterfactual keeps their dtype).

    Examples:
        >>> swap = TokenSwap([(5, 7)])
        >>> swap.flip_counterfactual(torch.tensor([[1, 5, 2, 7], [7, 3, 0, 0]]))
        tensor([[1, 7, 2, 5],
                [5, 3, 0, 0]])
        >>> swap.groups(torch.tensor([[1, 5], [7, 3], [5, 7], [1, 2]]))
        tensor([ 0,  1, -1, -1])
    """

    per_position = True  # padded positions (attention mask 0) are not swapped: see counterfactual_inputs

    def __init__(self, pairs: Iterable[Sequence[int]]) -> None:
        self.pairs = _check_pairs(pairs)
        first = torch.tensor([a for a, _ in self.pairs])
        second = torch.tensor([b for _, b in self.pairs])
        self._first, self._second = first, second
        table = torch.arange(int(max(first.max(), second.max())) + 1)
        table[first], table[second] = second, first
        self._table = table

    @classmethod
    def from_words(cls, pairs: Iterable[Sequence[str]], tokenizer: object) -> TokenSwap:
        """A ``TokenSwap`` of word pairs, looked up in ``tokenizer``'s vocabulary; refuses words that are no
        single token of it.

        A word outside the vocabulary maps to the unknown token (``[UNK]``), and a pair holding it would
        swap every unknown word of every sentence; a word the tokenizer splits into word pieces cannot be
        swapped as one token; a special token (``[CLS]``, ``[PAD]``) is no identity term. Each is refused
        here, naming the word.

        Args:
            pairs: ``(word, word)`` pairs, e.g. ``[("he", "she"), ("his", "her")]``. For a byte-level BPE
                tokenizer (GPT-2, RoBERTa, Llama) a word inside a sentence is its own token with the leading
                space: give ``(" he", " she")``.
            tokenizer: a Hugging Face tokenizer, or any object with ``convert_tokens_to_ids`` (and, when it
                has them, ``tokenize``, ``unk_token_id`` and ``all_special_ids``).

        Examples:
            >>> class Vocab:  # a tokenizer's lookup, for the example
            ...     ids = {"[UNK]": 1, "he": 5, "she": 7}
            ...     unk_token_id, all_special_ids = 1, [0, 1]
            ...     def convert_tokens_to_ids(self, word): return self.ids.get(word, 1)
            >>> TokenSwap.from_words([("he", "she")], Vocab())
            TokenSwap(pairs=[(5, 7)])
        """
        convert = getattr(tokenizer, "convert_tokens_to_ids", None)
        if not callable(convert):
            raise TypeError(f"Expected argument `tokenizer` to have a convert_tokens_to_ids method (a Hugging Face tokenizer) "
                            f"but got {type(tokenizer).__name__}")
        try:
            given = [p if isinstance(p, str) else tuple(p) for p in pairs]
        except TypeError as err:
            raise TypeError(f"Expected argument `pairs` to be a sequence of (word, word) pairs but got {pairs!r:.80}") from err
        unk = getattr(tokenizer, "unk_token_id", None)
        special = set(getattr(tokenizer, "all_special_ids", None) or [])
        tokenize = getattr(tokenizer, "tokenize", None)
        ids = []
        for pair in given:
            if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(w, str) for w in pair):
                raise ValueError(f"Expected argument `pairs` to hold (word, word) pairs of strings but got {pair!r:.80}")
            ids.append(tuple(_word_id(w, convert, tokenize, unk, special) for w in pair))
        return cls(ids)

    def _check(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 2 or x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"Expected token ids, an integer tensor [N, T], but got {getattr(x, 'dtype', type(x))} "
                             f"{list(x.shape) if isinstance(x, Tensor) else ''}")
        return x

    def flip_counterfactual(self, x: Tensor) -> Tensor:
        """``x`` with the two terms of every pair swapped.

        Args:
            x: token ids ``[N, ...]`` (an integer dtype that holds every swapped id).
        """
        x = self._check(x)
        table = self._table.to(x.device)
        top = table.shape[0] - 1
        ids = x.long()  # any integer dtype indexes as int64 (int16, int8 or uint8 ids would not, or pick a mask)
        out = torch.where((ids >= 0) & (ids <= top), table[ids.clamp(0, top)], ids)
        if x.dtype != torch.int64 and bool((out.to(x.dtype).long() != out).any()):
            raise ValueError(f"Expected token ids of dtype {x.dtype} to hold every id of {self!r:.80} but the swap gives "
                             f"{int(out[out.to(x.dtype).long() != out][0])}, which {x.dtype} cannot hold; pass int32 or int64 ids")
        return out.to(x.dtype)

    def groups(self, x: Tensor) -> Tensor:
        """``[N]``: 0 if a sentence mentions first terms only, 1 if second terms only, else -1.

        Args:
            x: token ids ``[N, ...]``.
        """
        x = self._check(x)
        flat = x.reshape(x.shape[0], -1)
        has_a = torch.isin(flat, self._first.to(x.device)).any(1)
        has_b = torch.isin(flat, self._second.to(x.device)).any(1)
        return torch.where(has_a & ~has_b, 0, torch.where(has_b & ~has_a, 1, -1))

    def check_sensitive(self, sensitive: str | int | None) -> None:
        if sensitive is not None:
            raise ValueError(f"Expected argument `sensitive` to be None for a TokenSwap (it swaps token ids, no column) but got {sensitive!r}")

    def __repr__(self) -> str:
        return f"TokenSwap(pairs={self.pairs})"
