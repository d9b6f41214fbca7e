"""How reversed triggers flag classes: the ratio rule on the (compact) score and Neural
Cleanse's index rule, and the result of :func:`~lightning_causal.causal.backdoor.neural_cleanse.neural_cleanse`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lightning_causal.causal.backdoor.mask_statistics import divide_by_concentration, norm_ratio
from lightning_causal.causal.backdoor.suspects import mad_anomaly_index
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.engine.checks import check_float, check_int

__all__ = ["COMPACTNESS", "MAX_NORM_RATIO", "MAX_PLAIN_RATIO", "MAX_RATIO", "PLAIN_TARGET_ASR", "TARGET_ASR", "ReversedTriggers",
           "left_out_words", "norm_statistics", "resolve_max_ratio", "resolve_target_asr"]

#: Default bound of the ratio rule on the compact score (image inputs, ``compactness > 0``).
MAX_RATIO = 0.75
#: Default bound of the ratio rule when the score is the plain norm ratio on images (``compactness=0``).
MAX_NORM_RATIO = 0.6
#: Default bound of the ratio rule on inputs that are not images (signals, tabular rows), where the
#: score is the plain norm ratio: chosen on the development set of
#: ``benchmarks/bench_backdoor_nonimage.py``, where 0.6 flagged 5 of 12 clean models.
MAX_PLAIN_RATIO = 0.35
#: Default exponent of the concentration in the score (0: the plain norm ratio).
COMPACTNESS = 1.0
#: Default attack rate a reversed trigger must reach when the compact score flags (images).
TARGET_ASR = 0.5
#: Default attack rate without the compact score (inputs that are not images, ``compactness=0``):
#: Neural Cleanse's own.
PLAIN_TARGET_ASR = 0.99


def resolve_target_asr(target_asr: float | str, compact: bool) -> float:
    """``"auto"`` → :data:`TARGET_ASR` (0.5) with the compact score, :data:`PLAIN_TARGET_ASR`
    (0.99) without it; a number is returned as given, checked (in (0, 1]).

    At 0.5 the reversed masks of clean classes are small too; the concentration is what keeps
    them from being flagged. Without it (a flattened-digits MLP, no concentration) the 0.5 rate
    flagged a class of a cleanly trained model at the 0.6 bound, the 0.99 rate did not.

    Args:
        target_asr: ``"auto"`` or a number in ``(0, 1]``.
        compact: whether the score uses the concentration.
    """
    if target_asr == "auto":
        return TARGET_ASR if compact else PLAIN_TARGET_ASR
    if isinstance(target_asr, str):
        raise ValueError(f"Expected argument `target_asr` to be 'auto' or a number in (0, 1] but got {target_asr!r}")
    return check_float("target_asr", target_asr, minimum=0.0, maximum=1.0, open_min=True)


def resolve_max_ratio(max_ratio: float | str | None, compact: bool, image: bool = True) -> float | None:
    """``"auto"`` → :data:`MAX_RATIO` if the score uses the concentration (``compact``), else
    :data:`MAX_NORM_RATIO` for images and :data:`MAX_PLAIN_RATIO` for other inputs (``image``
    false); a number or ``None`` (the index rule) is returned as given, checked.

    Args:
        max_ratio: ``"auto"``, a number > 0, or ``None`` (the index rule).
        compact: whether the score uses the concentration.
        image: whether the inputs are images.
    """
    if max_ratio == "auto":
        return MAX_RATIO if compact else MAX_NORM_RATIO if image else MAX_PLAIN_RATIO
    if max_ratio is None:
        return None
    if isinstance(max_ratio, str):
        raise ValueError(f"Expected argument `max_ratio` to be 'auto', a number > 0 or None but got {max_ratio!r}")
    return check_float("max_ratio", max_ratio, minimum=0.0, open_min=True)


def norm_statistics(norms: Tensor, unattacked: Sequence[int] = ()) -> tuple[Tensor, Tensor]:
    """The anomaly index (:func:`~lightning_causal.causal.backdoor.suspects.mad_anomaly_index`) and the
    :func:`~lightning_causal.causal.backdoor.mask_statistics.norm_ratio` of reversed mask norms, taken over the
    classes that had inputs to move.

    A class every input was already predicted as (``unattacked``) gave its trigger no input to move: its loss
    was the mask penalty alone, and its mask shrank to nearly nothing. Its norm measures no trigger, so it is
    left out of the median and the MAD, and its index and ratio are NaN. The index needs two classes to compare:
    with fewer left it is NaN for all (a lone class's ratio is 1, its norm over itself). Without ``unattacked``
    these are ``mad_anomaly_index(norms), norm_ratio(norms)``.

    Args:
        norms: ``[C]`` the mask norms.
        unattacked: the classes left out: the class every input was already predicted as
            (:attr:`ReversedTriggers.unattacked`) and the classes ruled out with -inf on every input
            (:attr:`ReversedTriggers.ruled_out`).

    Raises:
        ValueError: an entry of ``unattacked`` that is not a class of ``norms`` (an int in ``[0, C - 1]``).

    Examples:
        >>> index, ratio = norm_statistics(torch.tensor([0.01, 2.0, 4.0, 6.0]), unattacked=[0])
        >>> [round(v, 4) for v in index.tolist()], ratio.tolist()  # classes 1-3: median 4, MAD 2
        ([nan, 0.6745, 0.0, -0.6745], [nan, 0.5, 1.0, 1.5])
    """
    _check_unattacked(unattacked, norms.shape[0])
    if not unattacked:
        return mad_anomaly_index(norms), norm_ratio(norms)
    keep = torch.ones(norms.shape[0], dtype=torch.bool, device=norms.device)
    keep[list(unattacked)] = False
    index, ratio = torch.full_like(norms, math.nan), torch.full_like(norms, math.nan)
    if int(keep.sum()) >= 2:
        index[keep] = mad_anomaly_index(norms[keep])
    if bool(keep.any()):
        ratio[keep] = norm_ratio(norms[keep])
    return index, ratio


def _check_unattacked(unattacked: Sequence[int], num_classes: int, name: str = "unattacked") -> None:
    """Each of ``unattacked`` (the argument ``name``) a class of the ``num_classes`` (an index past them raised torch's
    IndexError, and ``-1`` set the last class's values to NaN while the rules, which compare class numbers, could still
    flag it)."""
    for k in unattacked:
        check_int(name, k, minimum=0, maximum=num_classes - 1)


@dataclass
class ReversedTriggers:
    """Result of :func:`neural_cleanse`.

    Attributes:
        triggers: one reverse-engineered :class:`Trigger` per class (``triggers[c].target == c``).
        anomaly_index: ``[C]`` MAD anomaly index of the mask norms (positive = smaller than usual), over
            the classes not ``unattacked`` (:func:`norm_statistics`).
        mask_norms: ``[C]`` ``|m_c|_1`` of each returned mask.
        attack_rates: ``[C]`` attack success rate of each returned trigger on the inputs
            (those not already predicted as the class; NaN where there are none).
        lambdas: ``[C]`` final weight of the mask norm.
        threshold: the anomaly index that flags a class under the index rule (``max_ratio=None``).
        concentration: ``[C]`` :func:`mask_concentration` of each mask (image inputs; else ``None``).
        min_concentration: if set, a class is flagged only if its concentration is at least this.
        max_ratio: the ratio rule (default): a class is flagged if ``score <= max_ratio``;
            ``None``: the index rule of Neural Cleanse, ``anomaly_index >= threshold``.
        norm_ratio: ``[C]`` each mask norm over the median norm (computed if not given, by
            :func:`norm_statistics`).
        compactness: the exponent ``p`` of the score (0: the score is the norm ratio).
        unattacked: the classes every input was already predicted as: their triggers had no input to
            move and shrank under the mask penalty alone. They are never flagged, never
            :attr:`most_suspect`, and are left out of the median and the MAD (their index, ratio and
            score are NaN, :func:`norm_statistics`).
        ruled_out: the classes whose output is -inf on every input (``logits.masked_fill(~seen, float("-inf"))``
            of a class not yet seen) and that their reversed trigger moved no input into (attack rate 0): the search
            had no gradient towards them and their masks measure no trigger. Treated as ``unattacked`` (never
            flagged, never :attr:`most_suspect`, out of the median and the MAD); whether a trigger opens them for
            other inputs is not tested.
        score: ``[C]`` :func:`compact_ratio`: ``norm_ratio / concentration ** compactness``
            (the norm ratio without concentrations).
        flagged: the classes the rule flags (and, with ``min_concentration``, that are compact
            enough), lowest score first under the ratio rule, most anomalous first under the
            index rule.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal.backdoor.suspects import mad_anomaly_index
        >>> norms = torch.tensor([2.0, 10.0, 11.0, 12.0])  # class 0's trigger is far smaller: a planted one
        >>> triggers = [Trigger(torch.zeros(4), 0.0, target=c) for c in range(4)]
        >>> r = ReversedTriggers(triggers, mad_anomaly_index(norms), norms, torch.ones(4), torch.ones(4), max_ratio=0.75)
        >>> [round(v, 2) for v in r.norm_ratio.tolist()], r.flagged, r.most_suspect  # |m_c| / median 10.5
        ([0.19, 0.95, 1.05, 1.14], [0], 0)
    """

    triggers: list[Trigger]
    anomaly_index: Tensor
    mask_norms: Tensor
    attack_rates: Tensor
    lambdas: Tensor
    threshold: float = 2.0
    concentration: Tensor | None = None
    min_concentration: float | None = None
    max_ratio: float | None = None
    norm_ratio: Tensor | None = None
    compactness: float = 0.0
    unattacked: list[int] = field(default_factory=list)
    ruled_out: list[int] = field(default_factory=list)
    score: Tensor = field(init=False)
    flagged: list[int] = field(init=False)

    def __post_init__(self) -> None:
        if self.min_concentration is not None and self.concentration is None:
            raise ValueError("Expected `concentration` with `min_concentration` set (image masks only) but got None")
        _check_unattacked(self.unattacked, self.mask_norms.shape[0])
        _check_unattacked(self.ruled_out, self.mask_norms.shape[0], "ruled_out")
        left_out = self.left_out
        if self.norm_ratio is None:
            self.norm_ratio = norm_statistics(self.mask_norms, left_out)[1]
        self.score = divide_by_concentration(self.norm_ratio, self.concentration, self.compactness)
        if self.max_ratio is not None:
            order = self.score.argsort(stable=True).tolist()
            small = (self.score <= self.max_ratio).tolist()
        else:
            order = self.anomaly_index.argsort(descending=True).tolist()
            small = (self.anomaly_index >= self.threshold).tolist()
        self.flagged = [c for c in order if small[c] and c not in left_out
                        and (self.min_concentration is None or float(self.concentration[c]) >= self.min_concentration)]  # type: ignore[index]

    @property
    def most_suspect(self) -> int | None:
        """The class the rule ranks first, flagged or not: the lowest ``score`` under the ratio
        rule, the highest ``anomaly_index`` under the index rule (the first such class); a NaN
        ranks after every number. An ``unattacked`` or ``ruled_out`` class is never the answer: its mask measures no
        trigger. ``None`` where every class is left out (a class-incremental model at its first task: one class
        predicted for every input, the others ruled out with -inf), as ``BackdoorSuppressionTerm`` suppresses nothing
        there.

        Examples:
            >>> norms = torch.tensor([0.01, 2.0, 3.0])
            >>> kw = dict(max_ratio=0.75, unattacked=[0])
            >>> ReversedTriggers([Trigger(torch.zeros(2), 0.0, c) for c in range(3)], torch.zeros(3), norms, torch.ones(3),
            ...                  torch.ones(3), ruled_out=[1], **kw).most_suspect  # class 2, the one compared
            2
            >>> ReversedTriggers([Trigger(torch.zeros(2), 0.0, c) for c in range(3)], torch.zeros(3), norms, torch.ones(3),
            ...                  torch.ones(3), ruled_out=[1, 2], **kw).most_suspect is None  # every class left out
            True
        """
        key = (self.score if self.max_ratio is not None else -self.anomaly_index).tolist()
        left_out = set(self.left_out)
        compared = [c for c in range(len(key)) if c not in left_out]
        return min(compared, key=lambda c: (math.isnan(key[c]), key[c])) if compared else None

    @property
    def left_out(self) -> list[int]:
        """The classes whose masks measure no trigger, out of the median and the MAD and never flagged:
        ``unattacked`` and ``ruled_out``."""
        return [*self.unattacked, *self.ruled_out]


def left_out_words(result: ReversedTriggers, labels: Sequence[object] | None = None, inputs: str = "input") -> str:
    """Why each class of :attr:`ReversedTriggers.left_out` is out of the comparison, in words: the classes predicted
    for every input (``unattacked``), then those ruled out with -inf on every input (``ruled_out``); ``""`` where none
    is. The two-class warning of :func:`~lightning_causal.causal.backdoor.neural_cleanse.neural_cleanse` and
    ``BackdoorAudit``'s note name them so.

    Args:
        result: the :class:`ReversedTriggers`.
        labels: each class's label (``labels[k]``), or ``None``: the class numbers.
        inputs: what the inputs are called (``"probe sample"`` in an audit).

    Examples:
        >>> norms = torch.tensor([0.01, 2.0, 3.0, 4.0])
        >>> r = ReversedTriggers([Trigger(torch.zeros(2), 0.0, c) for c in range(4)], torch.zeros(4), norms,
        ...                      torch.ones(4), torch.ones(4), unattacked=[0], ruled_out=[2, 3])
        >>> left_out_words(r)
        'class 0 predicted for every input, classes 2, 3 ruled out with -inf on every input'
    """
    def named(group: Sequence[int]) -> str:
        shown = ", ".join(str(labels[k] if labels is not None else k) for k in group[:8])
        return f"class{'es' if len(group) > 1 else ''} {shown}{' ...' if len(group) > 8 else ''}"

    groups = ((result.unattacked, f"predicted for every {inputs}"), (result.ruled_out, f"ruled out with -inf on every {inputs}"))
    return ", ".join(f"{named(group)} {why}" for group, why in groups if group)
