"""Argument checks shared by every layer, with one message style:
"Expected argument `x` to be ... but got ...".

The core raises ``ValueError`` (wrong value) or ``TypeError`` (wrong kind); Lightning-facing code
passes ``error=MisconfigurationException``. Booleans are never accepted as numbers.

Examples:
    >>> check_int("top_k", 3, minimum=1)
    3
    >>> check_int("top_k", 0, minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: Expected argument `top_k` to be a positive int but got 0
    >>> check_float("alpha", 0.05, minimum=0.0, maximum=1.0, open_min=True)
    0.05
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

__all__ = ["MAX_SEED", "check_seed", "check_int", "check_float", "check_choice", "check_type", "check_callable", "check_class_labels"]

Error = type[Exception]


def _int_kind(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an int in [{minimum}, {maximum}]"
    if minimum == 1:
        return "a positive int"
    if minimum == 0:
        return "a non-negative int"
    if minimum is not None:
        return f"an int >= {minimum}"
    if maximum is not None:
        return f"an int <= {maximum}"
    return "an int"


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    none_ok: bool = False,
    error: Error = ValueError,
) -> int | None:
    """``value`` as an int in ``[minimum, maximum]`` (``None`` passes when ``none_ok``)."""
    if none_ok and value is None:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and minimum is not None and value < minimum or ok and maximum is not None and value > maximum:
        ok = False
    if not ok:
        raise error(f"Expected argument `{name}` to be {'None or ' if none_ok else ''}{_int_kind(minimum, maximum)} but got {value!r}")
    return int(value)


#: The largest seed of a ``torch.Generator`` (``manual_seed`` takes ``[0, 2**64 - 1]``; a negative seed would alias a positive one).
MAX_SEED = 2**64 - 1


def check_seed(value: Any, name: str = "seed", *, type_error: Error = ValueError) -> int:
    """``value`` as the seed of a private ``torch.Generator``: an int in ``[0, MAX_SEED]`` (``type_error``
    for a value that is no int, ``ValueError`` for one out of range: torch's own message, ``Overflow when
    unpacking long long``, named no argument).

    Examples:
        >>> check_seed(7)
        7
        >>> check_seed(-1)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `seed` to be an int in [0, 18446744073709551615] but got -1
    """
    check_int(name, value, error=type_error)
    return check_int(name, value, minimum=0, maximum=MAX_SEED)  # type: ignore[return-value]


def _float_kind(minimum: float | None, maximum: float | None, open_min: bool, open_max: bool) -> str:
    if minimum is not None and maximum is not None:
        return f"a number in {'(' if open_min else '['}{minimum}, {maximum}{')' if open_max else ']'}"
    if minimum is not None:
        if minimum == 0:
            return "a positive number" if open_min else "a non-negative number"
        return f"a number {'>' if open_min else '>='} {minimum}"
    if maximum is not None:
        return f"a number {'<' if open_max else '<='} {maximum}"
    return "a finite number"


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_min: bool = False,
    open_max: bool = False,
    none_ok: bool = False,
    error: Error = ValueError,
) -> float | None:
    """``value`` as a finite float in the given (half-)open or closed interval."""
    if none_ok and value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if open_min else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if open_max else value <= maximum
    if not ok:
        kind = _float_kind(minimum, maximum, open_min, open_max)
        raise error(f"Expected argument `{name}` to be {'None or ' if none_ok else ''}{kind} but got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Collection[Any], *, error: Error = ValueError) -> Any:
    """``value`` if it is one of ``choices``.

    Examples:
        >>> check_choice("mode", "fast", ("fast", "exact"))
        'fast'
    """
    try:
        ok = value in choices
    except TypeError:  # unhashable value against a set
        ok = False
    if not ok:
        raise error(f"Expected argument `{name}` to be one of {list(choices)} but got {value!r}")
    return value


def check_type(name: str, value: Any, types: type | tuple[type, ...], *, none_ok: bool = False, error: Error = TypeError) -> Any:
    """``value`` if it is an instance of ``types`` (``None`` passes when ``none_ok``)."""
    if none_ok and value is None:
        return None
    if not isinstance(value, types) or isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise error(f"Expected argument `{name}` to be {'None or ' if none_ok else ''}{names} but got {type(value).__name__}")
    return value


def check_callable(name: str, value: Any, what: str = "a callable", *, none_ok: bool = False, error: Error = TypeError) -> Any:
    """``value`` if it is callable (``None`` passes when ``none_ok``)."""
    if none_ok and value is None:
        return None
    if not callable(value):
        raise error(f"Expected argument `{name}` to be {'None or ' if none_ok else ''}{what} but got {value!r}")
    return value


def in_unit_interval(outputs: Any) -> bool:
    """Whether every entry of the float ``outputs`` lies in [0, 1] (sigmoids already: :func:`ordinal_hint`)."""
    read = outputs.detach()
    return bool(read.is_floating_point() and ((read >= 0) & (read <= 1)).all())


def ranks_beyond(labels: Any, width: int) -> bool:
    """Whether integer ``labels`` are ranks ``0 .. width``, one class beyond a model's ``width`` outputs: what an ordinal
    head's ``width`` cumulative logits (CORAL, rank > k) are trained on; no classifier of ``width`` classes has a class
    ``width`` (:func:`check_class_labels`; the per-level reading of ``audits.label_task.level_outputs``)."""
    return int(labels.min()) == 0 and int(labels.max()) == width


def ordinal_hint(width: int, sigmoids: bool = False) -> str:
    """``"; or <width + 1> ranks of an ordinal head's <width> cumulative logits ..."``: what a class one beyond a model's
    ``width`` outputs (labels ``0 .. width``, a ``target=width``) may mean, and the ways to explain such ranks;
    ``sigmoids``: the outputs read lie in [0, 1] already (a head ending in ``nn.Sigmoid``, whose outputs are
    ``P(rank > k)``), whose expected rank is ``out.sum(1)``, not ``torch.sigmoid(out).sum(1)`` (``torch.sigmoid`` of a
    probability lies in [0.5, 0.73], which shrinks the effects about fourfold).

    Examples:
        >>> "torch.sigmoid(out).sum(1" in ordinal_hint(4), "torch.sigmoid" in ordinal_hint(4, sigmoids=True)
        (True, False)
    """
    of = "out" if sigmoids else "torch.sigmoid(out)"
    read = (f"{width} cumulative probabilities P(rank > k) (a head ending in nn.Sigmoid: its outputs lie in [0, 1] "
            "already)" if sigmoids else f"{width} cumulative logits (CORAL, rank > k)")
    return (f"; or {width + 1} ranks of an ordinal head's {read}, whose "
            f"largest is no rank: explain the expected rank, `output=lambda out: {of}.sum(1, "
            f"keepdim=True)` (of CORN's conditional {'probabilities' if sigmoids else 'logits'}, rank > k given rank > k - 1: "
            f"`output=lambda out: {of}.cumprod(1).sum(1, keepdim=True)`), with the labels left out of the probe, or, "
            "for the audits that read classes "
            f"(CounterfactualAudit, FairnessAudit) and a rank as the target, `output=` the {width + 1} rank classes' "
            "log-probabilities, which the ranks index (docs/your_model.md, 'Ordinal heads and survival models')")


def ranks_hint(width: int, outputs: Any = None) -> str:
    """:func:`ordinal_hint` for a class ``width`` beyond the ``outputs`` read (``None``: not read), or ``""`` where they
    are one decision's classes: rows of probabilities summing to 1 or of log-probabilities (a head ending in
    ``nn.Softmax`` or ``nn.LogSoftmax``), whose index ``width`` is a class numbered from 1, and whose sum over the
    classes, the hint's expected rank, is constant (:func:`check_class_labels`, ``state.resolve_target``).

    Examples:
        >>> import torch
        >>> ranks_hint(3, torch.tensor([[0.2, 0.3, 0.5]])), "out.sum(1" in ranks_hint(3, torch.tensor([[0.2, 0.9, 0.5]]))
        ('', True)
    """
    if outputs is None:
        return ordinal_hint(width)
    # state and log_probabilities (through batching) import this module: read here, once a label is refused
    from lightning_causal.causal.engine.log_probabilities import log_probability_rows
    from lightning_causal.causal.engine.state import rows_sum_to_one

    read = outputs.detach()
    if read.is_floating_point() and read.dim() == 2 and (rows_sum_to_one(read) or log_probability_rows(read)):
        return ""
    return ordinal_hint(width, in_unit_interval(read))


def check_class_labels(name: str, labels: Any, width: int, *, error: Error = ValueError, outputs: Any = None) -> None:
    """Integer class labels must index a classifier's ``width`` outputs: ``0 .. width − 1`` (labels
    numbered from 1, or a class the model does not have, would be read as other classes or as
    wrong everywhere). Float labels (regression) and outputs of one column are not checked. ``outputs``: the outputs
    read, whose lying in [0, 1] the ranks' hint (:func:`ranks_hint`) says, and which
    leaves it out where they are class probabilities or log-probabilities.

    Examples:
        >>> import torch
        >>> check_class_labels("labels", torch.tensor([0, 2]), 3)
        >>> check_class_labels("labels", torch.tensor([1, 2, 3]), 3)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `labels` to hold classes 0 to 2 (the model returns 3 logits) but got [3] among them (e.g. labels numbered from 1)
    """
    if width < 2 or labels is None or getattr(labels, "numel", lambda: 0)() == 0 or labels.is_floating_point() or labels.dtype.is_complex:
        return
    bad = labels[(labels < 0) | (labels >= width)]
    if bad.numel():
        ordinal = ""
        shape = getattr(outputs, "shape", ())
        one = width == 2 and len(shape) in (1, 2) and (len(shape) == 1 or shape[1] == 1)  # one output read as two classes
        if ranks_beyond(labels, width):  # ranks 0 .. width: one more than the outputs
            ordinal = ranks_hint(width, outputs)
        why = why_beyond = f"e.g. labels numbered from 1{ordinal}"
        seen = set(labels.unique().tolist())
        if labels.dim() == 1 and labels.numel() > width and bool((labels == labels.new_ones(labels.shape).cumsum(0) - 1).all()):
            why = (f"labels 0 to {labels.numel() - 1} in order, each row's own index, are an in-batch contrastive loss's "
                   "(InfoNCE's labels = arange(B), pairing image i with caption i of a CLIP-like model's [B, B] "
                   "similarities), no classes: leave them out (None), or give the samples' classes")
        elif one and bool((bad > 1).any()):  # classes of another task beside one score (a pair's similarity)
            why = ("labels of more classes beside one output, which is read as a binary logit (a score such as a "
                   "CLIP-like model's similarity of a pair, a regression), are no decisions of it: leave them out (None), or "
                   "explain the classes' scores (a zero-shot classifier's [N, C])")
        elif seen == {-1, 1} or (width == 2 and seen <= {-1, 1}):  # a margin classifier's labels (a probe of one class too)
            why = "labels -1/+1, a margin classifier's, are no classes: give (y + 1) // 2, classes 0 and 1"
            if -1 in seen and 1 not in seen:  # all -1: a margin probe of one class, or padding read as ignore_index=-1
                why += ("; or, where -1 marks a position without a target (cross_entropy's ignore_index=-1, a padded "
                        "node or token), give one label per sample of a position real in every sample, or none")
        elif bool((bad < 0).any()):  # cross_entropy's ignore_index: a padded node's or token's label, read as no class
            why = ("a negative label such as -100, cross_entropy's ignore_index, marks a position without a target (a "
                   "padded node or token), no class: give one label per sample of a position real in every sample, or "
                   "leave the labels out (None)")
            if bool((bad >= width).any()):  # and classes the model does not have
                why += f"; and labels beyond the classes, {why_beyond}"
        raise error(f"Expected {name if ' ' in name else f'argument `{name}`'} to hold classes 0 to {width - 1} ("
                    + ("the model returns one output, read as a binary logit" if one else f"the model returns {width} logits")
                    + ") but got "
                    f"{sorted(set(bad.tolist()))[:6]} among them ({why})")
