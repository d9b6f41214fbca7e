"""A model that carries a state across batches in :class:`~lightning_causal.repair.module.CausalRepairModule`: the state
its task pass sets, sized by the batch, or the rows it writes into a memory bank (:func:`task_pass_state`, read at the first step of a fit, of each epoch and after
each validation loop while the model carries none: such a model runs unfused) and the
note added to an error its forward raises in a term's pass of another row count than that state's batch
(:func:`term_pass_noted`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.kept_attributes import KeptAttributes
from lightning_causal.repair.base import RepairTerm

__all__ = ["memory_rows_written", "sized_by_batch", "task_pass_state", "term_pass_noted", "validation_batches"]

#: The way out a note names, as docs/your_model.md ('A state carried across batches') says it.
STATE_FIX = ("read the carried state only where the rows are those it was carried for, and start other rows from a "
             "fresh state (`h0 = self.h if self.h is not None and self.h.shape[0] == x.shape[0] else None`): the term's "
             "rows then start from a fresh state; a term's pass of the batch's row count reads the state as well. See "
             "docs/your_model.md, 'A state carried across batches'")


def sized_by_batch(shape: tuple[int, ...], n: int, set_: bool = True) -> bool:
    """Whether a state of ``shape`` is sized by a batch of ``n`` rows: a dimension ``n`` (``[N, H]``, an ``nn.GRU``'s
    ``[layers, N, H]``), or, for a state that was set (``set_``: created or reassigned, not updated in place in its
    tensor), a first dimension that is a multiple of ``n`` (a state kept flattened, ``[N * T, H]``).

    Args:
        shape: the state's shape.
        n: the batch's row count.
        set_: the state was set, not updated in place.

    Examples:
        >>> sized_by_batch((8, 5), 8), sized_by_batch((32, 5), 8), sized_by_batch((32,), 8, set_=False), sized_by_batch((), 8)
        (True, True, False, False)
    """
    return n in shape or (set_ and len(shape) > 0 and shape[0] > 0 and n > 0 and shape[0] % n == 0)


def task_pass_state(kept: KeptAttributes, model: nn.Module, n: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The state sized by the batch that ``model``'s task pass on ``n`` rows changed since ``kept`` was taken
    (:meth:`KeptAttributes.changes`, those :func:`sized_by_batch`): non-empty for a model that carries a state across
    batches (``self.h = h.detach()``, ``[N, H]``; an ``nn.GRU``'s ``[layers, N, H]``; flattened, ``[N * T, H]``), which
    then runs unfused, since a joint pass of the task's rows and the terms' would leave the joint batch's state
    (``[2N, H]`` instead of ``[N, H]``). A state of another size updated in place or reassigned (a step counter,
    ``spectral_norm``'s ``u`` and ``v``, a running mean of the features) has the same size after a joint pass: the
    model keeps fusing, and a counter counts a step once, not once per pass. A state reassigned with a first dimension
    that is a multiple of ``n`` (a running mean of 64 features on batches of 32 rows) is taken for a carried one: the
    model runs unfused, which costs time, not results. A memory bank the pass wrote rows into
    (:func:`memory_rows_written`: a FIFO queue of keys) is such a state too: unfused, put back after the terms' passes.

    Args:
        kept: :func:`~lightning_causal.causal.engine.kept_attributes.keep_attributes` of ``model`` with
            ``reassigned_buffers=True`` (and ``values=True`` to find a memory bank), taken before the task's pass.
        model: the model.
        n: the row count of the task pass's batch.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal.engine.kept_attributes import keep_attributes
        >>> m = nn.GRUCell(3, 4)
        >>> m.register_buffer("steps", torch.zeros(()))
        >>> kept = keep_attributes(m, reassigned_buffers=True)
        >>> m.h = m(torch.zeros(8, 3)).detach()
        >>> m.steps += 1
        >>> task_pass_state(kept, m, 8)
        (('h', (8, 4)),)
    """
    carried = tuple((name, shape) for name, shape, set_ in kept.changes(model) if sized_by_batch(shape, n, set_))
    return carried + tuple(m for m in memory_rows_written(kept, model, n) if m not in carried)


def memory_rows_written(kept: KeptAttributes, model: nn.Module, n: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The buffers of ``model`` whose values the task's pass on ``n`` rows changed in some of their slices along one
    dimension and not all, at most ``n`` of them: a memory bank the training rows are written into (a FIFO queue of
    keys and labels, ``self.keys[ptr:ptr + n] = z``, a kNN classifier's, or along the second dimension, MoCo's
    ``self.queue[:, ptr:ptr + n] = k.T`` of a ``[dim, K]`` queue), which a term's pass would fill
    with the term's own rows (a fused pass writes the counterfactual rows beside the task's; an unfused term's pass
    writes the batch's rows a second time), so that the bank would hold other rows than plain training puts there. Such
    a buffer is treated as a state carried across batches: the model runs unfused and the terms' passes put it back.
    A step counter (0-d), ``spectral_norm``'s ``u`` and ``v`` or a running mean (every entry changes) are no memory,
    nor a sparse or quantized buffer (which ``ne`` does not compare).
    Needs ``kept`` taken with ``values=True`` (otherwise nothing is found).

    Args:
        kept: :func:`~lightning_causal.causal.engine.kept_attributes.keep_attributes` of ``model`` with ``values=True``,
            taken before the task's pass.
        model: the model.
        n: the row count of the task pass's batch.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal.engine.kept_attributes import keep_attributes
        >>> m = nn.Linear(3, 4)
        >>> m.register_buffer("keys", torch.zeros(16, 4))
        >>> m.register_buffer("steps", torch.zeros(()))
        >>> kept = keep_attributes(m, reassigned_buffers=True, values=True)
        >>> with torch.no_grad():
        ...     m.keys[:8] = m(torch.ones(8, 3))
        >>> m.steps += 1
        >>> memory_rows_written(kept, m, 8)
        (('keys', (16, 4)),)
        >>> m.register_buffer("queue", torch.zeros(4, 16))  # MoCo's [dim, K], written along its second dimension
        >>> kept = keep_attributes(m, reassigned_buffers=True, values=True)
        >>> m.queue[:, 8:] = torch.ones(4, 8)
        >>> memory_rows_written(kept, m, 8)
        (('queue', (4, 16)),)
    """
    names = {id(b): name for name, b in model.named_buffers() if b is not None}
    found = []
    for b, version, copy in kept.values or ():
        if (id(b) not in names or b.is_inference() or b._version == version or b.dim() == 0 or b.shape != copy.shape
                or b.layout is not torch.strided or b.is_quantized):  # a sparse count of co-occurrences: no FIFO, no `ne`
            continue
        moved = b.ne(copy)
        if b.is_floating_point() or b.is_complex():
            moved &= ~(b.isnan() & copy.isnan())  # NaN kept as NaN is no write
        if not b.numel():
            continue
        written = torch.stack([moved.movedim(d, 0).reshape(size, -1).any(1).sum() for d, size in enumerate(b.shape)])
        if any(0 < k <= n and k < size for k, size in zip(written.tolist(), b.shape)):  # the slices written along a dimension
            found.append((names[id(b)], tuple(b.shape)))
    return tuple(found)


def validation_batches(trainer: Any) -> int | None:
    """The validation batches ``trainer``'s fit has started so far (its validation loop's progress, Lightning's
    internals), ``None`` without a trainer or where those internals are missing or changed. A change between two
    training steps says that a validation loop ran between them, whatever hooks a subclass overrides (its own
    ``on_validation_model_eval`` that calls ``self.model.eval()``, not the module's ``eval()``): the carried state is
    read again at the next step.

    Args:
        trainer: the module's trainer, or ``None``.

    Examples:
        >>> validation_batches(None) is None
        True
    """
    if trainer is None:
        return None
    try:  # Lightning's internals: where they changed, None (the module's eval() in a validation loop still marks it)
        return int(trainer.fit_loop.epoch_loop.val_loop.batch_progress.total.started)
    except Exception:  # noqa: BLE001 - a check only, never an error of the step
        return None


def _rows(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """The row count of a call's first tensor input (positional, else keyword), ``None`` without one."""
    first = next((a for a in [*args, *kwargs.values()] if isinstance(a, Tensor)), None)
    return int(first.shape[0]) if first is not None and first.dim() > 0 else None


@contextlib.contextmanager
def term_pass_noted(model: nn.Module, term: RepairTerm, state: Sequence[tuple[str, tuple[int, ...]]], n: int) -> Iterator[None]:
    """Run a term's passes; an error raised inside ``model``'s forward on a pass of another row count than ``n``, while
    ``model`` carries a state sized by the batch (:func:`sized_by_batch`), gets a note naming that state, ``term``, the
    pass's rows and the way out (``STATE_FIX``); the error itself is raised as it was.

    Args:
        model: the model the term runs.
        term: the term.
        state: the state the task's pass changed (:func:`task_pass_state`); empty: nothing is watched.
        n: the batch's row count.
    """
    sized = [(name, shape) for name, shape in state if sized_by_batch(shape, n)]
    if not sized:
        yield
        return
    calls: list[int | None] = []
    depth = [0]

    def entered(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        calls.append(_rows(args, kwargs))
        depth[0] += 1

    def left(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        depth[0] -= 1

    handles = [model.register_forward_pre_hook(entered, with_kwargs=True),
               model.register_forward_hook(left, with_kwargs=True)]
    try:
        yield
    except Exception as err:
        if depth[0] > 0 and calls and calls[-1] not in (None, n):
            names = ", ".join(f"{name} {list(shape)}" for name, shape in sized[:3])
            err.add_note(
                f"CausalRepairModule: the model carries a state across batches ({names}, set by the task's pass on the "
                f"batch of {n} rows) and the pass of term {term.name!r} ({type(term).__name__}) ran it on {calls[-1]} rows "
                "of its own, which that state does not fit. The terms' passes start from the state the task's pass "
                f"left, and it is put back after them (such a model runs unfused); {STATE_FIX}")
        raise
    finally:
        for handle in handles:
            handle.remove()
