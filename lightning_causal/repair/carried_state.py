"""A model that carries a state across batches in :class:`~lightning_causal.repair.module.CausalRepairModule`: the state
its task pass sets, sized by the batch, or the rows it writes into a memory bank (:func:`task_pass_state`, read at the first step of a fit, of each epoch and after
each validation loop while the model carries none: such a model runs unfused) and the
note added to an error its forward raises in a term's pass of another row count than that state's batch
(:func:`term_pass_noted`)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal._compat import with_note
from lightning_causal.causal.engine.ablation import _equal_entries
from lightning_causal.causal.engine.kept_attributes import (
    KeptAttributes,
    _dict_names,
    _holder_names,
    buffer_of,
    keep_attributes,
)
from lightning_causal.repair.base import RepairTerm

__all__ = ["kept_step_state", "memory_rows_written", "sized_by_batch", "task_pass_state", "term_pass_noted", "validation_batches"]

#: The way out a note names, as docs/your_model.md ('A state carried across batches') says it.
STATE_FIX = ("read the carried state only where the rows are those it was carried for, and start other rows from a "
             "fresh state (`h0 = self.h if self.h is not None and self.h.shape[0] == x.shape[0] else None`): the term's "
             "rows then start from a fresh state; a term's pass of the batch's row count reads the state as well. See "
             "docs/your_model.md, 'A state carried across batches'")


def kept_step_state(model: nn.Module) -> KeptAttributes:
    """What a repair step keeps of ``model`` around passes whose state is not the task's (a term's passes, and the task's
    pass watched for a carried state): :func:`~lightning_causal.causal.engine.kept_attributes.keep_attributes` with the
    buffers' very tensors (``reassigned_buffers``), the values of buffers and number attributes (``values``: a memory
    bank, a step counter) and the helper objects' (``helpers``: a datastore of its own, ``self.store.keys``), whatever
    their size (``helper_bytes=math.inf``: the terms' passes run in training mode and would leave their rows in a bank).

    Examples:
        >>> m = nn.Linear(2, 2)
        >>> m.h = torch.zeros(1, 2)
        >>> kept = kept_step_state(m)
        >>> m.h = torch.ones(3, 2)
        >>> kept.restore()
        >>> m.h.shape
        torch.Size([1, 2])
    """
    return keep_attributes(model, reassigned_buffers=True, values=True, helpers=True, helper_bytes=math.inf)


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
    return carried + tuple(m for m in memory_rows_written(kept, model) if m not in carried)


def memory_rows_written(kept: KeptAttributes, model: nn.Module) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The buffers and tensor attributes of ``model`` the task's pass wrote rows into, by what it changed
    (:func:`_rows_written`), however many rows a step writes: some of their slices along one dimension and not all, or
    every slice shifted along one (a bank rebuilt first in, first out), or slices appended along one; a memory bank
    (a FIFO queue of keys and labels, ``self.keys[ptr:ptr + n] = z``, a kNN classifier's, a kNN-LM's ``N * T`` keys of
    every token, or along the second dimension, MoCo's ``self.queue[:, ptr:ptr + n] = k.T`` of a ``[dim, K]`` queue,
    also fed by a batch gathered from every rank; ``self.keys = torch.cat([self.keys, k])[-K:]`` of any size, or grown
    without bound; a plain attribute as a buffer; a tensor of a datastore object a module holds, ``self.store.keys``,
    where ``kept`` was taken with ``helpers=True``), which a term's pass would fill
    with the term's own rows (a fused pass writes the counterfactual rows beside the task's; an unfused term's pass
    writes the batch's rows a second time), so that the bank would hold other rows than plain training puts there. Such
    a buffer is treated as a state carried across batches: the model runs unfused and the terms' passes put it back.
    A step counter (0-d), ``spectral_norm``'s ``u`` and ``v`` (:func:`_power_iterated`, also converged, some entries
    moved by an ulp) or a running mean (every entry moves) are no memory,
    nor a sparse or quantized buffer (which ``ne`` does not compare). A state whose entries the pass moves in some
    slices only (a count of the classes seen) is taken for one: the model runs unfused, which costs time, not results.
    Needs ``kept`` taken with ``values=True`` for the buffers (the tensor attributes are kept either way); read from
    the values kept at that step (the first of each epoch), no copy of its own.

    Args:
        kept: :func:`~lightning_causal.causal.engine.kept_attributes.keep_attributes` of ``model`` with ``values=True``,
            taken before the task's pass.
        model: the model.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal.engine.kept_attributes import keep_attributes
        >>> m = nn.Linear(3, 4)
        >>> m.register_buffer("keys", torch.zeros(16, 4))
        >>> m.register_buffer("queue", torch.zeros(4, 16))  # MoCo's [dim, K], written along its second dimension
        >>> m.register_buffer("steps", torch.zeros(()))
        >>> kept = keep_attributes(m, reassigned_buffers=True, values=True)
        >>> with torch.no_grad():
        ...     m.keys[:12] = m(torch.ones(12, 3))  # 12 rows of a batch of 4: a token's key each
        ...     m.queue[:, 8:] = torch.ones(4, 8)
        >>> m.steps += 1
        >>> memory_rows_written(kept, m)
        (('keys', (16, 4)), ('queue', (4, 16)))
    """
    names = _holder_names(model, kept.entries)
    copies = {id(b): copy for b, _, copy in kept.values or ()}
    found: list[tuple[str, tuple[int, ...]]] = []
    for m, name, b, version in kept.buffers:  # in place, or reassigned: the values kept of the buffer it held
        now = buffer_of(m, name)
        copy = copies.get(id(b))
        if (copy is not None and isinstance(now, Tensor) and (now is not b or now._version != version)
                and not _power_iterated(m, name) and _rows_written(copy, now)):
            found.append((f"{names[id(m)]}.{name}" if names.get(id(m)) else name, tuple(now.shape)))
    copies = {id(t): (version, address, copy) for t, version, address, copy in kept.copies}
    places = [(f"{names[id(m)]}." if names.get(id(m)) else "", "", before, vars(m)) for m, before, _ in kept.entries]
    if kept.dicts:  # a bank in a dict, `self.store.bank["keys"][rows] = z`, named as changes() names it
        dict_names = _dict_names(model)
        places += [(f"{dict_names.get(id(d), '<dict>')}[", "]", items, d) for d, items, _ in kept.dicts]
    for at, end, before, now_items in places:  # a tensor attribute or item: updated in place or reassigned
        for name, old in before.items():
            now, held = now_items.get(name), copies.get(id(old))  # only a kept tensor's (no isinstance: a dead weak proxy fails it)
            if (held is not None and isinstance(now, Tensor) and (now is not old or now._version != held[0])
                    and (held[2] is None or _rows_written(held[2], now))):  # None: a helper object past its copies'
                # budget (kept_attributes.KEPT_HELPER_BYTES), no values to compare: taken for a bank (unfused, as safe)
                found.append((f"{at}{name if not end else repr(name)}{end}", tuple(now.shape)))
    return tuple(found)


def _power_iterated(m: nn.Module, name: str) -> bool:
    """Whether buffer ``name`` of ``m`` is a vector torch's ``spectral_norm`` iterates at every training pass (``_u`` and
    ``_v`` of ``parametrizations.spectral_norm``, ``weight_u`` and ``weight_v`` of the older hook): no memory, though once
    converged (a trained model's) a pass moves some of its entries by an ulp and leaves the others, as a bank written in
    some slices would be."""
    if type(m).__name__ == "_SpectralNorm" and name in ("_u", "_v"):
        return True
    return any(type(h).__name__ == "SpectralNorm" and name in (f"{getattr(h, 'name', '')}_u", f"{getattr(h, 'name', '')}_v")
               for h in m._forward_pre_hooks.values())


def _rows_written(old: Tensor, new: Tensor) -> bool:
    """Whether ``new`` holds ``old`` with rows written into it along one dimension: some of its slices changed and not
    all; every one changed as by a shift (the first ``m`` dropped, ``m`` written after the rest: a FIFO rebuilt by
    ``torch.cat``, :func:`_shifted`; or the last ``m`` dropped, ``m`` written before the rest: a queue filled at the
    front); or, one dimension longer, ``old`` followed by new slices. NaN kept as NaN is no
    change; a 0-d, sparse, quantized or complex tensor, or one of another dtype or rank, none.

    Examples:
        >>> import torch
        >>> old = torch.arange(12.0).view(6, 2)
        >>> _rows_written(old, torch.cat([old[2:], -old[:2]])), _rows_written(old, old * 0.5), _rows_written(old, torch.cat([old, old]))
        (True, False, True)
        >>> _rows_written(old, torch.cat([-old[:2], old[:-2]]))  # written at the front
        True
    """
    if (old.dim() == 0 or new.dim() != old.dim() or new.dtype != old.dtype or new.layout is not torch.strided
            or old.layout is not torch.strided or new.is_quantized or new.is_complex() or not new.numel()):
        return False
    if new.shape != old.shape:  # slices appended along one dimension (a bank grown by `torch.cat`)
        grown = [d for d in range(new.dim()) if new.shape[d] != old.shape[d]]
        return (len(grown) == 1 and new.shape[grown[0]] > old.shape[grown[0]]
                and _same(new.narrow(grown[0], 0, old.shape[grown[0]]), old))
    moved = ~_equal_entries(new, old)  # NaN kept as NaN is no write
    if not bool(moved.any()):
        return False
    for d, size in enumerate(new.shape):  # the slices written along each dimension
        if 0 < int(moved.movedim(d, 0).reshape(size, -1).any(1).sum()) < size:
            return True
    return any(_shifted(o, n) or _shifted(o.flip(0), n.flip(0))  # rows added at the end, or at the front
               for o, n in ((old.movedim(d, 0), new.movedim(d, 0)) for d in range(new.dim()) if new.shape[d] > 1))


def _shifted(old: Tensor, new: Tensor) -> bool:
    """Whether ``new`` (of ``old``'s shape, ``[K, ...]``) is ``old`` without its first ``m`` slices, ``1 <= m < K``,
    followed by ``m`` others: where ``old``'s last slice is found in ``new`` (the last few places first: the
    shortest shifts), the slices before it are ``old``'s last ones. Read on both flipped, a queue adding its rows at the
    front (SwAV's ``queue[bs:] = queue[:-bs].clone(); queue[:bs] = emb``, ``torch.roll`` then a front write)."""
    k = old.shape[0]
    o, w = old.reshape(k, -1), new.reshape(k, -1)
    hits = _equal_entries(w, o[-1:]).all(1)[:-1].nonzero().flatten().flip(0)[:4]  # j: old[-1] at new[j], m = k - 1 - j
    return any(_same(w[:j + 1], o[k - 1 - j:]) for j in hits.tolist())


def _same(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` and ``b`` hold the same values, NaN equal to NaN."""
    return bool(_equal_entries(a, b).all())


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
            with_note(
                err, f"CausalRepairModule: the model carries a state across batches ({names}, set by the task's pass on the "
                f"batch of {n} rows) and the pass of term {term.name!r} ({type(term).__name__}) ran it on {calls[-1]} rows "
                "of its own, which that state does not fit. The terms' passes start from the state the task's pass "
                f"left, and it is put back after them (such a model runs unfused); {STATE_FIX}")
        raise
    finally:
        for handle in handles:
            handle.remove()
