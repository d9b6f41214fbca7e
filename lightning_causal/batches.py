"""One batch convention for the audit callback and the repair module: ``unpack_batch(batch) ->
(inputs, labels, additional_forward_args)``.

The default, :func:`default_unpack_batch`, understands

- a tensor ``x`` (no labels);
- ``(x,)`` and ``(x, y)`` (tuples or lists of tensors);
- ``((x1, x2, ...), y)`` and ``((x1, x2, ...),)``: a model of several inputs, called ``model(x1, x2, ...)``;
- a mapping: inputs are the first present of ``x``, ``inputs``, ``features``, ``input_ids``,
  ``pixel_values``, ``input_values``, ``input_features`` (the last two: a Hugging Face audio feature
  extractor's waveforms ``[N, T]`` of Wav2Vec2/HuBERT and log-mel features ``[N, n_mels, frames]`` of
  Whisper); labels the first of ``y``, ``labels``, ``label``, ``target``, ``targets``; with
  ``input_ids``, the ``attention_mask`` and ``token_type_ids`` present are keyword forward
  arguments (a Hugging Face tokenizer's batch).

Anything else, ``(x, y, w)`` included, is refused with a message that names ``unpack_batch`` and
shows a one-line fix: ``unpack_batch=lambda batch: (batch[0], batch[1], None)`` (for a mapping, with its
own keys).

Examples:
    >>> import torch
    >>> default_unpack_batch((torch.zeros(2, 3), torch.tensor([0, 1])))[1]
    tensor([0, 1])
    >>> ids, labels, kwargs = default_unpack_batch(
    ...     {"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.ones(2, 4), "labels": torch.zeros(2)})
    >>> sorted(kwargs)
    ['attention_mask']
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from lightning_causal.causal.engine.input_kinds import check_input_kinds
from lightning_causal.causal.engine.per_sample_results import per_sample_mappings, targets_way

__all__ = ["INPUT_KEYS", "LABEL_KEYS", "TOKEN_ARGUMENT_KEYS", "Unpacked", "default_input_key", "default_label_key",
           "default_unpack_batch",
           "keys_unpack_batch", "unpack",
           "unread_keys", "unread_keys_message", "forward_keys"]

INPUT_KEYS = ("x", "inputs", "features", "input_ids", "pixel_values", "input_values", "input_features")
LABEL_KEYS = ("y", "labels", "label", "target", "targets")
TOKEN_ARGUMENT_KEYS = ("attention_mask", "token_type_ids")


def default_input_key(batch: Mapping) -> str | None:
    """The key of a mapping ``batch`` whose value the default unpacking reads as the inputs: the first of
    :data:`INPUT_KEYS` it holds (``None``: none)."""
    return next((k for k in INPUT_KEYS if k in batch), None)


def default_label_key(batch: Mapping | Sequence[str]) -> str | None:
    """The key of a mapping ``batch`` (or of its names) whose value the default unpacking reads as the labels: the
    first of :data:`LABEL_KEYS` it holds (``None``: none).

    Args:
        batch: a mapping batch, or the names of a batch's parts (a dataclass's fields).

    Examples:
        >>> default_label_key({"x": 0, "target": 0, "y": 0}), default_label_key(["image", "class"])
        ('y', None)
    """
    return next((k for k in LABEL_KEYS if k in batch), None)

Unpacked = tuple[Tensor | tuple[Tensor, ...], Tensor | None, Any]
UnpackBatch = Callable[[Any], Unpacked]

_FIX = (
    "pass `unpack_batch=` a callable batch -> (inputs, labels, additional_forward_args), e.g. "
    "`unpack_batch=lambda batch: (batch[0], batch[1], None)`"
)


def _describe(batch: Any) -> str:
    fields = _dataclass_fields(batch)
    if fields is not None:
        return f"a dataclass {type(batch).__name__} with tensor fields {fields}"
    if isinstance(batch, Mapping):
        return f"a {type(batch).__name__} with keys {list(batch)}"
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of {len(batch)} items ({', '.join(type(b).__name__ for b in batch[:5])})"
    return f"a {type(batch).__name__}"


def _named_parts(names: list[str]) -> tuple[str | None, list[str]]:
    """``(labels, inputs)`` of a batch whose parts have names: labels are the first of :data:`LABEL_KEYS`, else the
    second of two parts (``{"image": ..., "class": ...}``), else none: of three or more parts without a label name (a
    recommender's ``{"user_id", "gender", "dense", "pos", "neg"}``) every part is an input, none taken for labels."""
    label = default_label_key(names)
    rest = [k for k in names if k != label]
    if label is None and len(rest) == 2:  # e.g. {"image": ..., "class": ...}
        label, rest = rest[1], rest[:1]
    return label, rest


def _named_fix(names: list[str], access: Callable[[str], str]) -> str:
    """``(inputs, labels, None)`` of a batch whose parts have names (a mapping's keys, a dataclass's
    fields), written with ``access(name)``: labels and inputs as :func:`_named_parts` splits them (several inputs: a
    model of several inputs, ``model(x1, x2, ...)``)."""
    label, rest = _named_parts(names)
    parts = [access(k) for k in rest]
    x = parts[0] if len(parts) == 1 else f"({', '.join(parts)})" if parts else access("<inputs>")
    y = access(label) if label is not None else "None"
    return f"({x}, {y}, None)"


def _named_advice(names: list[str], access: Callable[[str], str]) -> str:
    """The ``unpack_batch=`` advice of :func:`_named_fix`; of several inputs, a note that they are
    listed in the batch's order, which says nothing of the order ``forward`` takes them in: a batch
    ``{"tab": ..., "image": ..., "y": ...}`` for ``forward(self, image, tab)`` would otherwise be
    answered with a lambda that calls ``model(tab, image)``, silently so for inputs of one shape."""
    several = len(_named_parts(names)[1]) > 1
    order = " with the inputs in the order `forward` takes them (the batch's order is no guide)" if several else ""
    return (f"pass `unpack_batch=` a callable batch -> (inputs, labels, additional_forward_args){order}, e.g. "
            f"`unpack_batch=lambda batch: {_named_fix(names, access)}`")


def _dataclass_fields(batch: Any) -> list[str] | None:
    """The names of a dataclass batch's tensor fields (``None``: not a dataclass instance)."""
    if not dataclasses.is_dataclass(batch) or isinstance(batch, type):
        return None
    return [f.name for f in dataclasses.fields(batch) if isinstance(getattr(batch, f.name, None), Tensor)]


def _forward_keys_advice(batch: Mapping, forward: Callable[..., Any] | None) -> str | None:
    """The ``unpack_batch=`` for a mapping ``batch`` without an input key whose keys name ``forward``'s parameters
    (:func:`forward_keys`): those keys in forward's order as the inputs (``explain=`` the first, of several), the
    labels the first of :data:`LABEL_KEYS`, else the one tensor key left (an in-context learner's ``{"x_ctx", "y_ctx",
    "x_q", "y_q"}`` for ``forward(x_q, x_ctx, y_ctx)``: ``y_q``, which the advice by the batch's order gave the model as
    an input); ``None`` where forward names none."""
    named = forward_keys(forward, batch)
    if not named:
        return None
    left = [str(k) for k, v in batch.items() if isinstance(v, Tensor) and k not in named]
    label = default_label_key(batch) or (left[0] if len(left) == 1 else None)
    explain = f", with `explain={named[0]!r}` (the input the audits that set input groups explain)" if len(named) > 1 else ""
    return f"forward takes ({', '.join(named)}), keys of the batch: pass `{keys_unpack_batch(batch, named, label)}`{explain}"


def _from_mapping(batch: Mapping, forward: Callable[..., Any] | None = None) -> Unpacked:
    key = default_input_key(batch)
    if key is None:
        keys = list(batch)
        fix = _forward_keys_advice(batch, forward) or _named_advice(keys, lambda k: f'batch[{k!r}]')
        raise ValueError(f"Expected a batch mapping with one of the input keys {list(INPUT_KEYS)} but got keys {keys}; {fix}")
    label = default_label_key(batch)
    labels = batch[label] if label is not None else None
    kwargs = {k: batch[k] for k in TOKEN_ARGUMENT_KEYS if k in batch} if key == "input_ids" else {}
    return batch[key], labels, kwargs or None


def unread_keys(batch: Any) -> list[str]:
    """The tensor entries of a mapping batch that :func:`default_unpack_batch` passes nowhere (not
    the input, the labels or, for token ids, the token arguments): a model whose ``forward`` needs
    one of them would not get it.

    Examples:
        >>> import torch
        >>> unread_keys({"x": torch.zeros(2, 3), "meta": torch.zeros(2, 5), "y": torch.zeros(2)})
        ['meta']
    """
    if not isinstance(batch, Mapping):
        return []
    key = default_input_key(batch)
    used = {key, default_label_key(batch)}
    if key == "input_ids":
        used |= set(TOKEN_ARGUMENT_KEYS)
    return [str(k) for k, v in batch.items() if isinstance(v, Tensor) and k not in used]


def forward_keys(forward: Callable[..., Any] | None, batch: Any) -> list[str] | None:
    """The keys of a mapping ``batch`` that name ``forward``'s positional parameters, in its order (the leading ones
    that are tensors of the batch), where they hold every parameter without a default and the first is not the input
    the default reads (a CLIP-like ``forward(pixels, input_ids, attention_mask)`` beside a batch ``{"pixels",
    "input_ids", "attention_mask", "label"}``, whose default input is ``input_ids``); else ``None``.

    Examples:
        >>> import torch
        >>> batch = {"pixels": torch.zeros(2, 1, 8, 8), "input_ids": torch.zeros(2, 6), "label": torch.zeros(2)}
        >>> forward_keys(lambda pixels, input_ids, attention_mask=None: None, batch)
        ['pixels', 'input_ids']
        >>> forward_keys(lambda input_ids, attention_mask=None: None, batch) is None  # the default reads it
        True
    """
    if forward is None or not isinstance(batch, Mapping):
        return None
    try:
        params = [p for p in inspect.signature(forward).parameters.values()
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return None
    names: list[str] = []
    for p in params:
        if not isinstance(batch.get(p.name), Tensor):
            break
        names.append(p.name)
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    key = default_input_key(batch)
    if not names or names[0] == key or any(n not in names for n in required):
        return None
    return names


def keys_unpack_batch(batch: Mapping, named: Sequence[str], label: str | None = None, arguments: Sequence[str] = ()) -> str:
    """``unpack_batch=lambda batch: (...)`` passing the keys ``named`` (:func:`forward_keys`) of a mapping ``batch`` as
    the inputs, its labels (``label``, default the first of :data:`LABEL_KEYS` it holds) and no forward arguments, or
    the keys ``arguments`` by name (the advice for keys the default passes to no call).

    Examples:
        >>> keys_unpack_batch({"pixels": 0, "label": 0}, ["pixels"])
        "unpack_batch=lambda batch: (batch['pixels'], batch['label'], None)"
        >>> keys_unpack_batch({"ids": 0, "mask": 0}, ["ids"], arguments=["mask"])
        "unpack_batch=lambda batch: (batch['ids'], None, {'mask': batch['mask']})"
    """
    label = label or default_label_key(batch)
    inputs = f"batch[{named[0]!r}]" if len(named) == 1 else "(" + ", ".join(f"batch[{k!r}]" for k in named) + ")"
    given = "{" + ", ".join(f"{k!r}: batch[{k!r}]" for k in arguments) + "}" if arguments else "None"
    return f"unpack_batch=lambda batch: ({inputs}, " + (f"batch[{label!r}]" if label else "None") + f", {given})"


def unread_keys_message(batch: Any, args: Any, batches: str, callers: str,
                        forward: Callable[..., Any] | None = None) -> str | None:
    """The warning that the tensors :func:`unread_keys` names reach no model call, with the ``unpack_batch=`` that
    passes them (``args``: the forward arguments the default passes, a tokenizer's ``attention_mask``, kept in it);
    ``None`` where every tensor is read. ``batches`` names the batches (``"The probe's batches"``), ``callers`` who
    calls the model on them (``"the audits"``). Where the batch's keys name ``forward``'s parameters
    (:func:`forward_keys`), the ``unpack_batch=`` passes those keys as its inputs, in its order.

    Args:
        batch: a batch read by :func:`default_unpack_batch`.
        args: the forward arguments it gave (its third part).
        batches: what the batches are, the message's subject.
        callers: what calls the model on them.
        forward: the model's ``forward``, where known.

    Examples:
        >>> import torch
        >>> unread_keys_message({"input_values": torch.zeros(2, 8), "attention_mask": torch.ones(2, 8), "labels": torch.zeros(2)},
        ...                     None, "The batches", "the audits").split(":")[0]
        "The batches hold ['attention_mask'] besides the inputs 'input_values' and the labels 'labels'"
    """
    unread = unread_keys(batch)
    if not unread:
        return None
    key = default_input_key(batch)
    label = default_label_key(batch)
    passed = list(args) if isinstance(args, Mapping) else []  # a tokenizer's attention_mask: keep it in the fix
    call = "".join(f", {k}=batch[{k!r}]" for k in passed)
    said = (f"{batches} hold {unread} besides the inputs {key!r}" + (f" and the labels {label!r}" if label else "")
            + f": the default `unpack_batch` passes them to no model call ({callers} call `model(batch[{key!r}]{call})`)")
    named = forward_keys(forward, batch)
    if named:  # forward's parameters are keys of the batch: pass those, in its order
        return (f"{said}, but forward takes ({', '.join(named)}), keys of the batch: pass `{keys_unpack_batch(batch, named)}`"
                + (f", and `explain={named[0]!r}` (the input the audits that set input groups explain)"
                   if len(named) > 1 else ""))
    return f"{said}. If forward needs them, pass `{keys_unpack_batch(batch, [key], arguments=[*passed, *unread])}`"


def _tensors(value: Any) -> bool:
    """Whether ``value`` is a non-empty tuple or list of tensors (the inputs of a model of several inputs)."""
    return isinstance(value, (tuple, list)) and bool(value) and all(isinstance(t, Tensor) for t in value)


def _triplet_advice(batch: Any) -> str:
    """The way to read three tensors of one shape, ``(anchor, positive, negative)`` of a triplet loss, which the
    advice for ``(x, y, w)`` would read as inputs, labels and weights (the positives taken for labels)."""
    if not (all(isinstance(t, Tensor) for t in batch) and batch[0].dim() > 1
            and batch[0].shape == batch[1].shape == batch[2].shape):
        return ""
    shape = ", ".join(["N", *(str(d) for d in batch[0].shape[1:])])
    return (f"; for three inputs of one shape [{shape}], (anchor, positive, negative) of a triplet loss, "
            "`unpack_batch=lambda batch: (batch[0], None, None)` explains the anchors (with `output=` a score per "
            "sample, the model's embedding being no class scores: docs/your_model.md, Models without class outputs)")


def time_event(time: Any, event: Any) -> str | None:
    """How ``time`` and ``event`` read as a survival model's right-censored targets: ``"float"`` for float times ``[N]``
    >= 0, not all 0 and 1 (a binary classifier's float labels), beside event indicators ``[N]`` holding both zeros and
    ones (all 1: uniform sample weights, or a batch without censoring, which the values cannot tell apart); ``"whole"``
    for integer times so (days), which the values cannot tell from class labels beside a 0/1 sample mask (the callers'
    words say "if"); ``None`` otherwise. One test, one pass over the values, for :func:`default_unpack_batch`'s message on
    ``(x, time, event)`` and for the refusal of stacked ``[N, 2]`` labels as classes
    (:func:`~lightning_causal.audits.options.check_one_label_per_sample`).

    Args:
        time: the candidate times, any value (``None`` unless a real, non-boolean tensor ``[N]``).
        event: the candidate event indicators, any value (``None`` unless a tensor of ``time``'s shape).

    Examples:
        >>> import torch
        >>> y = torch.tensor([0.0, 1.0, 1.0, 0.0])
        >>> time_event(torch.tensor([2.5, 0.3, 4.0, 1.2]), y), time_event(y, torch.ones(4)), time_event(y, y)
        ('float', None, None)
        >>> days = torch.tensor([30, 412, 95, 7])
        >>> time_event(days, y), time_event(days.bool(), y)
        ('whole', None)
    """
    if not (isinstance(time, Tensor) and isinstance(event, Tensor) and time.dim() == 1 and time.shape == event.shape
            and time.numel() > 0) or time.is_complex() or time.dtype == torch.bool:
        return None
    if not (bool((time >= 0).all()) and bool(((event == 0) | (event == 1)).all())):
        return None
    if bool(((time == 0) | (time == 1)).all()) or not (bool((event == 0).any()) and bool((event == 1).any())):
        return None
    return "float" if time.is_floating_point() else "whole"


def _survival_advice(batch: Any) -> str:
    """The way to read ``(x, time, event)`` of a survival model (times ``[N]`` >= 0 in floats, not all 0 and 1; event
    indicators ``[N]`` holding both zeros and ones), which the advice for ``(x, y, w)`` would read as class labels
    ``time``: the audits get no labels (a time is no class), a repair's own ``task_loss`` both, stacked ``[N, 2]``. Not
    for ``(x, y, w)`` of a weighted classifier: labels 0/1 in floats are no times, and weights all 1 (uniform) are no
    events (a batch without censoring is then told only the ``(x, y, w)`` way).

    Examples:
        >>> import torch
        >>> x, y = torch.zeros(4, 2), torch.tensor([0.0, 1.0, 1.0, 0.0])
        >>> bool(_survival_advice((x, torch.tensor([2.5, 0.3, 4.0, 1.2]), y))), bool(_survival_advice((x, y, torch.ones(4))))
        (True, False)
        >>> bool(_survival_advice((x, y, torch.tensor([1.0, 0.0, 1.0, 1.0]))))  # a 0/1 sample mask beside 0/1 labels
        False
    """
    if not all(isinstance(t, Tensor) for t in batch) or batch[0].dim() == 0:
        return ""
    x, time, event = batch
    if time.shape != (x.shape[0],):
        return ""
    reading = time_event(time, event)
    if reading == "float":
        opening = "; for (x, time, event) of a survival model, a time is no class label"
    elif reading == "whole":  # whole-unit times read as class labels beside a 0/1 mask as well
        opening = ("; if batch[1] holds a survival model's times in whole units (days) and batch[2] its events, not class "
                   "labels beside a sample mask, a time is no class label")
    else:
        return ""
    return (f"{opening}: give the audits "
            "`unpack_batch=lambda batch: (batch[0], None, None)` (and `output=` the log-risk or the survival to a "
            "horizon: docs/your_model.md, 'Ordinal heads and survival models'), and CausalRepairModule "
            "`unpack_batch=lambda batch: (batch[0], torch.stack([batch[1], batch[2].float()], 1), None)` with your "
            "partial likelihood of those [N, 2] labels as `task_loss`")


def _positional_names(forward: Callable[..., Any] | None) -> list[str] | None:
    """The names of ``forward``'s positional parameters in order; ``None`` where it is unknown or has no signature."""
    if forward is None:
        return None
    try:
        return [p.name for p in inspect.signature(forward).parameters.values()
                if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return None


def _positions_advice(batch: Sequence[Any], forward: Callable[..., Any] | None) -> str:
    """For a tuple of ``k > 3`` tensors whose ``forward`` takes ``k - 1`` positional parameters (a graph
    transformer's ``(x, pe, spd, attention_mask, y)`` beside ``forward(x, pe, spd, attention_mask)``): the
    ``unpack_batch=`` that reads the items in forward's order, the last as the labels, the others after the first as
    keyword forward arguments (so that an ``attention_mask`` among them marks padding); ``""`` where forward is unknown
    or takes another number of parameters. The advice of :data:`_FIX` alone would read ``batch[1]`` as the labels.

    Examples:
        >>> import torch
        >>> b = (torch.zeros(2, 3), torch.zeros(2, 3, 1), torch.ones(2, 3), torch.tensor([0, 1]))
        >>> print(_positions_advice(b, lambda x, pe, attention_mask: None))
        ; if the items are forward's (x, pe, attention_mask) in its order and the last holds the labels, `unpack_batch=lambda batch: (batch[0], batch[3], {'pe': batch[1], 'attention_mask': batch[2]})`
    """
    params = _positional_names(forward)
    if params is None or not all(isinstance(t, Tensor) for t in batch) or len(params) != len(batch) - 1:
        return ""
    args = ", ".join(f"{name!r}: batch[{i}]" for i, name in enumerate(params[1:], start=1))
    return (f"; if the items are forward's ({', '.join(params)}) in its order and the last holds the labels, "
            f"`unpack_batch=lambda batch: (batch[0], batch[{len(batch) - 1}], {{{args}}})`")


def _two_inputs_advice(batch: Sequence[Any], forward: Callable[..., Any] | None) -> str:
    """For ``(x1, x2, y)`` beside a ``forward`` of two positional parameters, ``x2`` holding more than one value per
    sample (a tabular model's ``(x_num, x_cat, y)`` beside ``forward(x_num, x_cat)``): the ``unpack_batch=`` of a model
    of two inputs, with ``explain=`` for the audits that perturb one, and the one passing ``x2`` as a forward argument.
    ``""`` where forward is unknown or takes another number of parameters, or ``x2`` is ``[N]`` (weights or lengths,
    which the advice before this covers). The advice of :data:`_FIX` alone would read ``x2`` as the labels.

    Examples:
        >>> import torch
        >>> b = (torch.zeros(4, 3), torch.zeros(4, 2, dtype=torch.long), torch.tensor([0, 1, 1, 0]))
        >>> print(_two_inputs_advice(b, lambda x_num, x_cat: None))
        ; for (x_num, x_cat, y) of a model forward(x_num, x_cat) of two inputs, `unpack_batch=lambda batch: ((batch[0], batch[1]), batch[2], None)` (with the callback's `explain='x_num'` or `explain='x_cat'`: the input the input-level audits perturb, the other following its rows), or `unpack_batch=lambda batch: (batch[0], batch[2], {'x_cat': batch[1]})` (x_cat a forward argument)
        >>> _two_inputs_advice(b[:1] + (torch.ones(4), b[2]), lambda x, lengths: None)  # (x, lengths, y): said before
        ''
    """
    params = _positional_names(forward)
    if params is None or not all(isinstance(t, Tensor) for t in batch) or batch[0].dim() == 0:
        return ""
    n = batch[0].shape[0]
    if len(params) != 2 or batch[1].dim() < 2 or batch[1].shape[0] != n or batch[2].dim() == 0 or batch[2].shape[0] != n:
        return ""
    a, b = params
    return (f"; for ({a}, {b}, y) of a model forward({a}, {b}) of two inputs, "
            "`unpack_batch=lambda batch: ((batch[0], batch[1]), batch[2], None)` (with the callback's "
            f"`explain={a!r}` or `explain={b!r}`: the input the input-level audits perturb, the other following its rows), "
            f"or `unpack_batch=lambda batch: (batch[0], batch[2], {{{b!r}: batch[1]}})` ({b} a forward argument)")


def _tensor_mapping(value: Any) -> bool:
    """Whether ``value`` is a non-empty mapping of tensors (the inputs of a model that takes one mapping)."""
    return isinstance(value, Mapping) and bool(value) and all(isinstance(t, Tensor) for t in value.values())


def _mapping_inputs_advice(inputs: Mapping[Any, Tensor], labelled: bool, forward: Callable[..., Any] | None = None) -> str:
    """For ``({"x": ..., "c": ...}, y)`` of a model whose ``forward`` takes one mapping: the estimators and audits call
    the model with tensors, never one mapping of inputs; the way is a forward that takes the tensors and the
    ``unpack_batch=`` that gives them, in the mapping's order.

    Examples:
        >>> import torch
        >>> print(_mapping_inputs_advice({"x": torch.zeros(2, 4), "c": torch.zeros(2, 2)}, labelled=True))
        the inputs are a mapping with keys ['x', 'c'], and the audits call the model with tensors, never one mapping of inputs: give them a forward that takes the tensors (a LightningModule's `forward(self, x, c): return self.net({'x': x, 'c': c})`, whose training_step then calls `self.net(inputs)` with the mapping, not `self(inputs)`; or such a wrapper module for `audit_model`) and pass `unpack_batch=lambda batch: ((batch[0]['x'], batch[0]['c']), batch[1], None)` (docs/recipes.md, 'Models of several inputs')
    """
    keys = list(inputs)
    names = _positional_names(forward) or []
    if set(keys) <= set(names):  # a forward that takes them by name already (forward(c, x)): passed in its order
        keys = [n for n in names if n in inputs]
    params = [k if isinstance(k, str) and k.isidentifier() else f"x{i}" for i, k in enumerate(keys)]
    parts = [f"batch[0][{k!r}]" for k in keys]
    given = parts[0] if len(parts) == 1 else f"({', '.join(parts)})"
    if set(keys) <= set(names):
        return (f"the inputs are a mapping with keys {list(inputs)}, which the model's forward takes as tensors in the "
                f"order {keys}: pass `unpack_batch=lambda batch: ({given}, {'batch[1]' if labelled else 'None'}, None)`")
    call = ", ".join(f"{k!r}: {p}" for k, p in zip(keys, params))
    return (f"the inputs are a mapping with keys {keys}, and the audits call the model with tensors, never one mapping "
            f"of inputs: give them a forward that takes the tensors (a LightningModule's `forward(self, "
            f"{', '.join(params)}): return self.net({{{call}}})`, whose training_step then calls `self.net(inputs)` "
            "with the mapping, not `self(inputs)`; or such a wrapper module for `audit_model`) and pass "
            f"`unpack_batch=lambda batch: ({given}, {'batch[1]' if labelled else 'None'}, None)` "
            "(docs/recipes.md, 'Models of several inputs')")


def default_unpack_batch(batch: Any, forward: Callable[..., Any] | None = None) -> Unpacked:
    """``(inputs, labels, additional_forward_args)`` of a batch under the default convention.

    Args:
        batch: a batch of the dataloader.
        forward: the model's ``forward``, where known: a mapping without an input key whose keys name its parameters
            is refused with the ``unpack_batch=`` that passes those keys in its order.

    Raises:
        ValueError: a batch of another shape, naming ``unpack_batch`` and a one-line fix.
    """
    if isinstance(batch, Tensor):
        return batch, None, None
    if isinstance(batch, Mapping):
        return _from_mapping(batch, forward)
    if isinstance(batch, (tuple, list)) and batch and all(isinstance(t, Tensor) for t in batch):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
    if isinstance(batch, (tuple, list)) and len(batch) in (1, 2) and isinstance(batch[0], PackedSequence):  # (packed, y)
        return batch[0], None, None  # refused by _check, naming the padded form (not read as the inputs of several tensors)
    if isinstance(batch, (tuple, list)) and len(batch) in (1, 2) and _tensors(batch[0]) and all(isinstance(t, Tensor) for t in batch[1:]):
        return tuple(batch[0]), (batch[1] if len(batch) == 2 else None), None  # ((x1, x2, ...), y): a model of several inputs
    fields = _dataclass_fields(batch)
    fix = _FIX if fields is None else _named_advice(fields, lambda k: f"batch.{k}")  # a dataclass is not indexed: its fields
    if isinstance(batch, list) and batch and all(isinstance(b, (tuple, list, Mapping)) for b in batch):  # [(x1, y1), ...]
        fix = ("a list of batches is read as one batch: to read its batches in turn, as a loader's, pass "
               "`DataLoader(batches, batch_size=None)` (or a `DataLoader` over the samples); or " + fix)
    elif fields is None and isinstance(batch, (tuple, list)) and len(batch) in (1, 2) and _tensor_mapping(batch[0]):
        fix = _mapping_inputs_advice(batch[0], labelled=len(batch) == 2, forward=forward)  # ({"x", "c"}, y) of a model taking one mapping
    elif fields is None and isinstance(batch, (tuple, list)) and len(batch) == 2 and per_sample_mappings(batch[1]):
        fix = targets_way(batch[1], stacked=_tensors(batch[0]))  # (images, targets) of a detector: no class labels
    elif fields is None and isinstance(batch, (tuple, list)) and len(batch) == 3:  # (x, y, w) or (x, lengths, y)
        fix += (" for batches (x, y, w); for (x, lengths, y) of a padded sequence model forward(x, lengths), "
                "`unpack_batch=lambda batch: (batch[0], batch[2], {'lengths': batch[1]})`" + _triplet_advice(batch)
                + _survival_advice(batch) + _two_inputs_advice(batch, forward))
    elif fields is None and isinstance(batch, (tuple, list)) and len(batch) > 3:  # (x, pe, spd, mask, y)
        fix += _positions_advice(batch, forward)
    raise ValueError(
        f"Expected a batch that is a tensor, (inputs, labels) or a mapping with an input key but got "
        f"{_describe(batch)}; {fix}"
    )


def _check(result: Any) -> Unpacked:
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise ValueError(f"Expected `unpack_batch` to return (inputs, labels, additional_forward_args) but got {_describe(result)}")
    inputs, labels, args = result
    if isinstance(inputs, PackedSequence):  # a tuple of tensors, not the inputs of a model of several inputs: say what to pass instead
        try:
            check_input_kinds("inputs", inputs)
        except TypeError as err:
            raise ValueError(str(err)) from None
    if isinstance(inputs, list) and _tensors(inputs):
        inputs = tuple(inputs)  # a collated ((x1, x2), y) batch holds a list
    tensors = inputs if isinstance(inputs, tuple) else (inputs,)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise ValueError(f"Expected `unpack_batch` to return a tensor or a tuple of tensors as inputs but got {_describe(inputs)}")
    if labels is not None and not isinstance(labels, Tensor):
        got = type(labels).__name__
        if per_sample_mappings(labels):  # a detector's targets, one dict per image
            got = f"{_describe(labels)}: {targets_way(labels)}"
        elif isinstance(labels, (Mapping, tuple, list)):  # the labels of several heads: {'cls': y, 'reg': r}
            got = (f"{_describe(labels)}: the labels of one head, the one the audits (or the repair's task loss) explain; "
                   "a model of several outputs is audited one head's labels per callback, each with its own "
                   "`unpack_batch=` (docs/your_model.md, 'Models of several outputs')")
        raise ValueError(f"Expected `unpack_batch` to return labels as a tensor or None but got {got}")
    if args is not None and not isinstance(args, (tuple, Mapping)):
        args = (args,)
    if args is not None and len(args) == 0:  # {} or (): no forward arguments (a term refuses any it is given)
        args = None
    return inputs, labels, args


def unpack(batch: Any, unpack_batch: UnpackBatch | None = None, forward: Callable[..., Any] | None = None) -> Unpacked:
    """Apply ``unpack_batch`` (default: :func:`default_unpack_batch`, told the model's ``forward``) and check what it
    returns."""
    return _check(unpack_batch(batch) if unpack_batch is not None else default_unpack_batch(batch, forward))


def num_rows(inputs: Tensor | Sequence[Tensor]) -> int:
    """Rows of the first input tensor."""
    return (inputs if isinstance(inputs, Tensor) else inputs[0]).shape[0]
