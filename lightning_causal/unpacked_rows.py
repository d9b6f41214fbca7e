"""The samples of a batch as ``unpack_batch`` reads them, for :func:`~lightning_causal.data_reading.read_samples`'
``rows_of`` / ``whole_of``: the callback's probe (``callbacks/_probe.py``) and the repair module's set-up inputs
(``repair/train_inputs.py``) count and keep whole the same rows through this one reader, so that neither cuts an episode
(its support set first, passed whole) or a batch given whole otherwise than the other."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from copy import deepcopy
from typing import Any

import torch
from torch import Tensor

from lightning_causal.batches import UnpackBatch, unpack
from lightning_causal.causal.engine.forward_args import ForwardArgs, map_tensors
from lightning_causal.data_reading import (
    MADE,
    PASSED,
    READS,
    batch_rows,
    mapping_like,
    rngs_untouched,
)

__all__ = ["copy_of", "input_rows"]

# a batch's samples, its tensors unpack passes whole, all it passes, and the first input it made (MADE)
_Read = tuple[int, list[Tensor], list[Tensor], Tensor | None]


def input_rows(model: Any, unpack_batch: UnpackBatch | None) -> tuple[Callable[[Any], int], Callable[[Any], list[Tensor]]]:
    """``(rows_of, whole_of)`` of the batches ``unpack(batch, unpack_batch, model.forward)`` reads: the rows of the
    input the model explains (``unpack``'s first input; an episode's queries where its first tensor is the support set),
    else its first tensor's (:func:`~lightning_causal.data_reading.batch_rows`); and the tensors of the batch that
    ``unpack`` passes whole whatever their rows (marked :func:`~lightning_causal.causal.mark_whole` by ``unpack_batch``:
    an episode's support set of as many rows as its queries; a shared ``position_ids``), which the reader never cuts
    nor joins. ``model`` is the network called (its ``audited_module``'s ``forward`` where it wraps one). An
    ``unpack_batch`` that draws (a denoiser's ``x_t``) draws inside :func:`~lightning_causal.data_reading.rngs_untouched`.

    A user's ``unpack_batch`` reads a copy of each batch's values (:func:`copy_of`), once per batch (the reader asks
    several times), so that one writing in place (``b[0].div_(255)``, ``b["x"] = ...``) changes neither the batch the
    rows are cut from nor the loader's stored items that training reads next; it is only ever called on the batch's
    real values (one keeping a state, a running mean, stores no stand-in), as often as the batches read. A dataset
    given whole as one batch is read off a cut of its rows first (``rows_of.reads``, see
    :func:`~lightning_causal.data_reading.read_samples`): the rows kept are copied, not the dataset. The package's own
    unpacking writes nothing and reads the batch itself.

    Examples:
        >>> rows_of, whole_of = input_rows(None, lambda b: (b["x"], b["y"], None))
        >>> rows_of({"support": torch.zeros(6, 3), "x": torch.zeros(10, 3), "y": torch.zeros(10)})
        10
    """
    forward = getattr(getattr(model, "audited_module", model), "forward", None)
    memo: dict[int, tuple[Any, _Read | None]] = {}  # id(batch) -> (batch, its reading)

    def read(batch: Any) -> _Read | None:
        kept = memo.get(id(batch))
        if kept is not None and kept[0] is batch:
            return kept[1]
        copy, originals = (batch, {}) if unpack_batch is None else copy_of(batch)
        found = _read(batch, copy, originals, unpack_batch, model, forward)
        memo[id(batch)] = (batch, found)
        return found

    def rows(batch: Any) -> int:
        found = read(batch)
        return found[0] if found is not None else batch_rows(batch)

    def whole(batch: Any) -> list[Tensor]:
        found = read(batch)
        return found[1] if found is not None else []

    if unpack_batch is not None:  # it reads copies: a batch given whole is read off a cut of its rows first
        setattr(rows, READS, lambda batch: read(batch) is not None)
        setattr(rows, PASSED, lambda batch: (read(batch) or (0, [], [], None))[2])
        setattr(rows, MADE, lambda batch: (read(batch) or (0, [], [], None))[3])
    return rows, whole


def _read(batch: Any, copy: Any, originals: dict[int, Tensor], unpack_batch: UnpackBatch | None, model: Any,
          forward: Callable[..., Any] | None) -> _Read | None:
    """The samples of ``batch`` and the batch's tensors passed whole, read by unpacking ``copy`` (``originals``: the
    batch's own tensor of each copied one, by the copy's id); ``None`` where unpack does not read it (the reader's
    count then, as before: the probe's own unpack says why). The first input is kept where ``unpack`` made it (not
    one of the copy's tensors passed as it is) without drawing: the reader compares items joined with the items apart
    (:data:`~lightning_causal.data_reading.MADE`)."""
    try:
        with rngs_untouched(unpack_batch, model, watch=True) as drawn, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the probe's own unpacking warns, once
            inputs, _, args = unpack(copy, unpack_batch, forward)
        first = inputs if isinstance(inputs, Tensor) else inputs[0] if isinstance(inputs, (tuple, list)) and inputs else None
        if not isinstance(first, Tensor) or not first.dim():
            return None
        rows = int(first.shape[0])
        made = None if id(first) in originals or any(drawn) else first
        given: list[Tensor] = []
        map_tensors((inputs, args), lambda t: given.append(t) or t)
        try:
            passed_args = ForwardArgs(args, rows)
        except (TypeError, ValueError):  # arguments that ForwardArgs refuses (the probe's build says why): none known
            return rows, [], _originals(batch, originals, given), made
    except Exception:  # a batch that unpack does not read
        return None
    return (rows, _originals(batch, originals, [*passed_args.whole, *passed_args.shared]), _originals(batch, originals, given),
            made)


def _originals(batch: Any, originals: dict[int, Tensor], passed: list[Tensor]) -> list[Tensor]:
    """The tensors of ``batch`` that ``unpack`` passes as ``passed`` (``originals``: the batch's own of each copy)."""
    mine = [originals[id(m)] for m in passed if id(m) in originals]  # the copies unpack passed as they are: by identity
    return mine + _in_batch(batch, [m for m in passed if id(m) not in originals])


def copy_of(batch: Any) -> tuple[Any, dict[int, Tensor]]:
    """A copy of ``batch`` for a user's ``unpack_batch`` to read, and the batch's own tensor of each copied one (by the
    copy's id): its tensors cloned in their containers (tuples, lists, mappings, dataclasses); an object holding tensors that
    :func:`~lightning_causal.causal.engine.forward_args.map_tensors` does not walk (a graph library's ``Batch``)
    deep-copied, else read as it is."""
    originals: dict[int, Tensor] = {}

    def copied(t: Tensor) -> Tensor:
        c = t.clone()
        originals[id(c)] = t
        return c

    made = map_tensors(batch, copied, dataclasses=True)
    if isinstance(batch, Mapping) and made is not batch:  # a mapping of its own type (a BatchEncoding) kept so
        made = mapping_like(batch, made)
    if made is batch and not isinstance(batch, (Tensor, tuple, list, Mapping)):
        try:
            made = deepcopy(batch)
        except Exception:  # an object that copies refuse to copy: read as it is, as before
            made = batch
    return made, originals


def _in_batch(batch: Any, passed: list[Tensor]) -> list[Tensor]:
    """The tensors of ``batch`` that ``unpack`` passes as ``passed``: the same tensor, else one of the same shape and
    values (an ``unpack_batch`` that copies or casts it, ``mark_whole((b[2].double(), b[3]), [0, 1])``)."""
    found: list[Tensor] = []
    map_tensors(batch, lambda t: found.append(t) or t, dataclasses=True)

    def source(m: Tensor) -> Tensor | None:
        same = next((t for t in found if t is m), None)
        if same is not None:
            return same
        try:
            return next((t for t in found if t.shape == m.shape and torch.equal(t.to(m.device, m.dtype), m)), None)
        except (RuntimeError, TypeError):  # layouts torch.equal does not compare (nested): by identity only
            return None

    return [t for t in map(source, passed) if t is not None]
