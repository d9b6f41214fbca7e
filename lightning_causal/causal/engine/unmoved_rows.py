"""The loops over the rows of an intervention batch that move (change what the model is fed), the others left unrun:
a row that changes nothing runs the clean sample, so its result is known without running it (the clean output, an
effect of 0). One piece for every row engine that leaves such rows out: the hidden-unit estimators
(:func:`~lightning_causal.causal.effects.unit_rows.moving_rows`), ``causal_graph``'s sweeps, the carrier units, and the
layer map's input-group rows (:func:`~lightning_causal.causal.structure.layer_trace.moving_input_rows`).

``moving`` is ``[R]`` booleans over the flat rows (``True``: the row runs), or ``None``: every row runs.
:func:`each_moving` runs chunks of the moving rows, :func:`spread_moving` writes their results back among the
unmoved rows' values, :func:`map_moving` chains the two for a result of one tensor per chunk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

from lightning_causal.causal.engine.batching import each_chunk, map_rows

__all__ = ["each_moving", "map_moving", "spread_moving"]

T = TypeVar("T")


def each_moving(moving: Tensor | None, total: int, rows: int, fn: Callable[[Tensor], T], device: torch.device,
                rows_of: Callable[[T], Tensor] | None = None) -> list[T]:
    """``fn(idx)`` over the flat rows ``idx`` that move (``moving``, ``[total]`` booleans; ``None``: all ``total``
    rows, ranges ``0..total``), in :func:`~lightning_causal.causal.engine.batching.each_chunk`'s chunks of at most
    ``rows`` of them (its out-of-memory retry); the chunks' results in a list, in row order (empty where no row moves).

    Args:
        moving: ``[total]`` booleans, or ``None``.
        total: the number of rows.
        rows: rows per chunk.
        fn: runs a chunk of flat rows (returns its results, or writes them by index).
        device: the device of the row indices.
        rows_of: a result's values per row, for the check of a
            :func:`~lightning_causal.causal.engine.batching.checked_chunks` block (``each_chunk``'s); ``None``: none.

    Examples:
        >>> each_moving(torch.tensor([False, True, True, True]), 4, 2, lambda idx: idx.tolist(), torch.device("cpu"))
        [[1, 2], [3]]
    """
    if moving is None:
        return each_chunk(total, rows, fn, device, rows_of)
    run = moving.nonzero().squeeze(1)
    return each_chunk(run.numel(), rows, lambda i: fn(run[i]), device, rows_of) if run.numel() else []


def spread_moving(parts: Sequence[Tensor], moving: Tensor | None, unmoved: Tensor | None = None) -> Tensor:
    """The moving rows' results ``parts`` (``[R_k, ...]`` each, in row order, as :func:`each_moving` returns them)
    written at the rows where ``moving`` holds of a new ``[R, ...]`` tensor whose other rows are ``unmoved``
    (broadcast to ``[R, ...]``, its dtype; ``None``: zeros of the parts' dtype), part by part with no stacked copy
    first. ``moving`` ``None``: the parts hold every row, concatenated.

    Args:
        parts: the results of the moving rows' chunks (at least one where ``unmoved`` is ``None``).
        moving: ``[R]`` booleans, or ``None``.
        unmoved: the result of a row that does not run (the clean output; an effect of 0), or ``None``.

    Examples:
        >>> spread_moving([torch.tensor([1.0, 2.0]), torch.tensor([3.0])], torch.tensor([True, False, True, True]))
        tensor([1., 0., 2., 3.])
        >>> spread_moving([torch.tensor([5.0])], torch.tensor([False, True]), torch.tensor(-1.0))
        tensor([-1.,  5.])
    """
    if moving is None:
        return torch.cat(list(parts))
    total = moving.shape[0]
    if unmoved is None:
        out = parts[0].new_zeros(total, *parts[0].shape[1:])
    else:
        out = unmoved.expand(total, *unmoved.shape[1:]).clone()
    where = moving.nonzero().squeeze(1)
    start = 0
    for part in parts:
        out[where[start:start + part.shape[0]]] = part.to(out.dtype)
        start += part.shape[0]
    return out


def map_moving(moving: Tensor | None, rows: int, evaluate: Callable[[Tensor], Tensor], unmoved: Tensor,
               device: torch.device) -> Tensor:
    """``[R]``: ``evaluate(idx)`` (``[r]`` results of the flat rows ``idx``) of the rows that move, ``unmoved[r]`` (what
    a row that runs the clean sample gives, broadcast to ``[R]``: the clean output, 0) for the others, in
    :func:`~lightning_causal.causal.engine.batching.map_rows`' passes of at most ``rows`` rows of those that move
    (:func:`spread_moving`); ``moving`` ``None``: every row of ``unmoved`` runs, as ``map_rows``.

    Args:
        moving: ``[R]`` booleans, or ``None``.
        rows: rows per pass.
        evaluate: ``evaluate(idx)`` -> ``[r]``.
        unmoved: the result of a row that is not run, broadcastable to ``[R]`` (its length says ``R``).
        device: the device of the row indices.

    Examples:
        >>> map_moving(torch.tensor([True, False, True]), 8, lambda idx: idx * 10.0, torch.full((3,), -1.0),
        ...            torch.device("cpu"))
        tensor([ 0., -1., 20.])
    """
    if moving is None:
        return map_rows(unmoved.shape[0], rows, evaluate, device)
    run = moving.nonzero().squeeze(1)
    ran = [map_rows(run.numel(), rows, lambda i: evaluate(run[i]), device)] if run.numel() else []
    return spread_moving(ran, moving, unmoved)
