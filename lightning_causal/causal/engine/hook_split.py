"""Split a model at a layer with module hooks, for models ``torch.fx`` cannot trace (Hugging Face).

Every module call that *completes before* the layer's first call starts cannot depend on the
layer, so its output can be recorded once for the probe and replayed by row. The split:

1. records the tree of module calls in two trial runs (1 and 2 rows) and picks the *cached calls*:
   the outermost completed calls under the layer's ancestors whose outputs have a plan
   (:mod:`~.live_values`; a call without one runs, and its children are considered instead);
2. replays the second trial with those calls answered from the record and the layer's call
   answered with its recorded output, watching (``TorchFunctionMode``) which recorded tensors
   any computation reads; the replay must reproduce the trial's output (else: refused);
3. runs the probe once, keeping only the outputs some computation reads.

A suffix run calls the model on the rows' inputs (forward arguments taken by row) with the
cached modules' ``forward`` replaced by a lookup (the outputs nothing reads become zero-copy
stubs, a tensor subclass: a run that reads one raises :class:`StubRead`, counted so that a model
that catches it is refused too; no ``TorchFunctionMode`` slows the suffix's other operations) and
the layer's first call answered with the intervened value; the ancestors' own code after the cut
and every later module runs as usual. Exactness needs what the full-forward
fallback needs too: the model treats samples independently (evaluation mode).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.interventions import module_output, replace_output
from lightning_causal.causal.engine.live_values import (
    ROWS,
    check_rows,
    close,
    follows_samples,
    leaves,
    mixed_rows,
    rebuild,
    rows_of,
    snapshot,
    take,
    trial_rows,
    value_plan,
)
from lightning_causal.causal.engine.suffix import SplitRefused

__all__ = ["HookSplit", "edit_copy", "hook_split", "patched_forwards", "record_calls", "CallRecord", "StubRead"]

Edit = Callable[[Tensor], Tensor]
_METADATA = {
    Tensor.shape.__get__, Tensor.dtype.__get__, Tensor.device.__get__, Tensor.ndim.__get__,
    Tensor.requires_grad.__get__, Tensor.size, Tensor.dim, Tensor.__len__, Tensor.numel, Tensor.is_floating_point,
    Tensor.element_size, Tensor.nbytes.__get__, Tensor.itemsize.__get__,  # the memory budget's probe reads these
}


@dataclass
class CallRecord:
    """The module calls of one model run: ``names`` and ``parents`` of every call (the layer's later calls too,
    which ``PrefixCache.calls`` counts), ``outputs`` of those completed before the layer's first call (``cut``)."""

    names: list[str] = field(default_factory=list)
    parents: list[int | None] = field(default_factory=list)
    outputs: dict[int, Any] = field(default_factory=dict)
    cut: int | None = None
    ancestors: tuple[int, ...] = ()
    cut_output: Any = None
    output: Any = None


@contextlib.contextmanager
def _hooks(model: nn.Module, layer: nn.Module, rec: CallRecord, keep: Callable[[int], bool]) -> Iterator[None]:
    stack: list[int] = []
    handles = []

    def pre(name: str) -> Callable:
        def hook(module: nn.Module, _args: Any) -> None:
            seq = len(rec.names)
            rec.names.append(name)
            rec.parents.append(stack[-1] if stack else None)
            if module is layer and rec.cut is None:
                rec.cut, rec.ancestors = seq, tuple(stack)
            stack.append(seq)

        return hook

    def post(_module: nn.Module, _args: Any, output: Any) -> None:
        seq = stack.pop()
        if seq == rec.cut:
            rec.cut_output = snapshot(output)
        elif rec.cut is None and keep(seq):
            rec.outputs[seq] = snapshot(output)

    try:
        for name, module in model.named_modules():
            if isinstance(module, torch.jit.ScriptModule):  # takes no hooks; its calls are seen from its eager parent
                continue
            handles.append(module.register_forward_pre_hook(pre(name)))
            handles.append(module.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()


def record_calls(forward: Forward, xs: tuple[Tensor, ...], layer: nn.Module, rows: Tensor | None,
                 *,
                 keep: Callable[[int], bool] = lambda _seq: True) -> CallRecord:
    """Run the model on the samples ``rows`` (``None``: all) recording its module calls up to the
    first call of ``layer``, the outputs of the calls ``keep`` selects, the layer's output and the
    model's output."""
    rec = CallRecord()
    with _hooks(forward.model, layer, rec, keep):
        inputs = xs if rows is None else tuple(x[rows] for x in xs)
        rec.output = forward.raw(*inputs, rows=rows)
    if rec.cut is None:
        raise SplitRefused("the layer is never called")
    return rec


def _cached_calls(one: CallRecord, two: CallRecord) -> dict[int, Any]:
    """The outermost completed calls under the cut's ancestors that have a plan: ``{seq: plan}``."""
    cut = two.cut
    if one.cut != cut or one.names[:cut] != two.names[:cut] or one.parents[:cut] != two.parents[:cut]:
        raise SplitRefused("the module calls before the layer depend on the batch size")
    children: dict[int, list[int]] = {}
    for seq in range(cut):
        if two.parents[seq] is not None:
            children.setdefault(two.parents[seq], []).append(seq)
    cached: dict[int, Any] = {}

    def visit(seq: int) -> None:
        for child in children.get(seq, []):
            plan = value_plan(one.outputs.get(child), two.outputs.get(child)) if child in two.outputs else None
            if plan is not None:
                cached[child] = plan
            else:
                visit(child)

    for anc in two.ancestors:
        visit(anc)
    return cached


def _call_indices(rec: CallRecord, cached: dict[int, Any]) -> dict[str, dict[int, int]]:
    """Per module: which of its calls that still happen in a replay (not inside a cached call or
    the layer's) are cached: ``{name: {call index: seq}}``."""
    hidden: set[int] = set()
    counts: dict[str, int] = {}
    index: dict[str, dict[int, int]] = {}
    for seq in range(rec.cut):
        parent = rec.parents[seq]
        if parent is not None and (parent in hidden or parent in cached):
            hidden.add(seq)
            continue
        name = rec.names[seq]
        k = counts.get(name, 0)
        counts[name] = k + 1
        if seq in cached:
            index.setdefault(name, {})[k] = seq
    return index


@contextlib.contextmanager
def patched_forwards(wrappers: dict[nn.Module, Callable[..., Any]]) -> Iterator[None]:
    """Replace the ``forward`` of modules for the duration of the block (restored in ``finally``)."""
    missing = object()
    saved = []
    try:
        for module, make in wrappers.items():
            saved.append((module, module.__dict__.get("forward", missing)))
            object.__setattr__(module, "forward", make(module.forward))
        yield
    finally:
        for module, previous in saved:
            if previous is missing:
                module.__dict__.pop("forward", None)
            else:
                object.__setattr__(module, "forward", previous)


class _Watch(TorchFunctionMode):
    """Records which watched tensors (by identity) any torch function reads."""

    def __init__(self) -> None:
        super().__init__()
        self.watched: dict[int, Any] = {}
        self.alive: list[Any] = []
        self.read: set[Any] = set()

    def add(self, key: Any, value: Any) -> None:
        self.alive.append(value)
        for t in leaves(value):
            self.watched[id(t)] = key

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, D105
        kwargs = kwargs or {}
        if func not in _METADATA:
            for t in leaves(list(args) + list(kwargs.values())):
                key = self.watched.get(id(t))
                if key is not None:
                    self.read.add(key)
        return func(*args, **kwargs)


def edit_copy(edit: Edit, h: Tensor) -> Tensor:
    """``edit(h)`` for an ``h`` the caller owns (a fresh copy of the layer's output): written into it
    when the edit offers that (``edit.in_place``, the hidden-unit estimators' rows: only the replaced
    units are touched, not every element)."""
    return getattr(edit, "in_place", edit)(h)


class StubRead(Exception):
    """A hook-split run read a cached output that was not recorded for the probe (see :meth:`HookSplit.run`)."""


_READS = threading.local()  # how many times a stub was read in this thread (model code may swallow the error)


class Stub(Tensor):
    """A cached output the trial rows did not read, standing in by a zero-copy expansion: any torch
    function on it but metadata raises :class:`StubRead` (and is counted). Only the stubs pay for
    the check: the suffix's other operations run at full speed, unlike under a ``TorchFunctionMode``."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206, D105
        if func not in _METADATA:
            _READS.count = getattr(_READS, "count", 0) + 1
            raise StubRead("a run read cached module outputs that the trial rows did not read")
        return super().__torch_function__(func, types, args, kwargs)


def _stubbed(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.as_subclass(Stub)
    if isinstance(value, (tuple, list)):
        return rebuild(value, [_stubbed(v) for v in value])
    return value


def _no_op(_module: nn.Module, _args: Any, _output: Any) -> None:
    return None


@dataclass
class HookSplit:
    """A model split at a layer by module hooks (see the module docstring); built by :func:`hook_split`."""

    forward: Forward
    xs: tuple[Tensor, ...]
    layer: nn.Module
    modules: dict[str, nn.Module]
    plans: dict[int, Any]
    values: dict[int, Any]
    stubs: set[int]
    index: dict[str, dict[int, int]]
    cut_plan: Any
    cut_output: Any
    cut_stub: bool
    watch: _Watch | None = None

    def _answer(self, seq: int, rows: Tensor) -> Any:
        out = take(self.plans[seq], self.values[seq], rows, stub=seq in self.stubs)
        if seq in self.stubs:
            out = _stubbed(out)
        if self.watch is not None:
            self.watch.add(seq, out)
        return out

    def _layer_output(self, value: Tensor, rows: Tensor) -> Any:
        if self.cut_plan == ROWS:
            return value
        rest = [take(p, v, rows, stub=self.cut_stub) for p, v in zip(self.cut_plan[1:], self.cut_output[1:])]
        if self.cut_stub:
            rest = [_stubbed(r) for r in rest]
        if self.watch is not None:
            self.watch.add("layer", rest)
        return rebuild(self.cut_output, (value, *rest))

    def _wrappers(self, value: Tensor | Edit, rows: Tensor) -> dict[nn.Module, Callable[..., Any]]:
        def cached(calls: dict[int, int]) -> Callable[..., Any]:
            def make(original: Callable[..., Any]) -> Callable[..., Any]:
                count = iter(range(1 << 62))

                def forward(*args: Any, **kwargs: Any) -> Any:
                    seq = calls.get(next(count))
                    return original(*args, **kwargs) if seq is None else self._answer(seq, rows)

                return forward

            return make

        def layer(original: Callable[..., Any]) -> Callable[..., Any]:
            count = iter(range(1 << 62))

            def forward(*args: Any, **kwargs: Any) -> Any:
                if next(count) == 0:
                    h = rows_of(module_output(self.cut_output), rows)
                    return self._layer_output(value if isinstance(value, Tensor) else edit_copy(value, h), rows)
                out = original(*args, **kwargs)
                return out if isinstance(value, Tensor) else replace_output(out, value(module_output(out)))

            return forward

        wrappers = {self.modules[name]: cached(calls) for name, calls in self.index.items()}
        wrappers[self.layer] = layer
        return wrappers

    def run(self, value: Tensor | Edit, rows: Tensor) -> Any:
        """The model's raw output for the samples ``rows`` with the layer's first call answered by
        ``value`` (a tensor, or an edit of the recorded output applied to every call).

        Raises:
            StubRead: the run read a cached output that the trial replay did not read (a stub, not
                recorded for the probe): a branch taken by these rows only (``if h[i, 0] > 0``
                per row after the layer) reads what the trial rows' branch did not.
        """
        # a no-op hook on the layer, as the full-forward path has: code that takes a fused fast
        # path only when no hooks are attached (torch's TransformerEncoderLayer) still calls it
        reads = getattr(_READS, "count", 0)
        handle = self.layer.register_forward_hook(_no_op)
        try:
            with patched_forwards(self._wrappers(value, rows)):
                out = self.forward.raw(*(rows_of(x, rows) for x in self.xs), rows=rows)
        except StubRead as err:
            raise StubRead(f"a run of {rows.numel()} rows read cached module outputs that the trial rows did not read") from err
        finally:
            handle.remove()
        if getattr(_READS, "count", 0) != reads:  # the model's code caught the StubRead and went on
            raise StubRead(f"a run of {rows.numel()} rows read cached module outputs that the trial rows did not read")
        return out


def hook_split(forward: Forward, xs: tuple[Tensor, ...], layer: nn.Module,
               around: contextlib.AbstractContextManager | None = None) -> tuple[HookSplit, CallRecord]:
    """Plan and check the hook split on two trial runs, then record the probe once.

    Returns the split and the probe run's record (its ``output`` and ``cut_output``). ``around``:
    a context the probe run runs in (the read positions' check on every sample).

    Raises:
        SplitRefused: the layer is not called, its output (element 0) is not one row per sample,
            the calls before it depend on the batch size, or the replay does not reproduce the model.
    """
    n = xs[0].shape[0]
    rows_one, rows_two = trial_rows(n, xs[0].device)
    one = record_calls(forward, xs, layer, rows_one)
    two = record_calls(forward, xs, layer, rows_two)
    cut_plan = value_plan(one.cut_output, two.cut_output)
    if cut_plan is None or (cut_plan if cut_plan == ROWS else cut_plan[0]) != ROWS:
        raise SplitRefused("the layer's output (element 0) is not one tensor row per sample")
    plans = _cached_calls(one, two)
    modules = dict(forward.model.named_modules())
    index = _call_indices(two, plans)
    # the second trial's records hold its rows in order; its rows are [0, 1] (or [0, 0] for one
    # sample, two equal rows), so taking them by `rows_two` gives the trial back
    trial = HookSplit(forward, xs, layer, modules, plans, dict(two.outputs), set(), index, cut_plan,
                      two.cut_output, False, _Watch())
    try:
        with trial.watch:
            replayed = trial.run(module_output(two.cut_output)[rows_two], rows_two)
    except Exception as err:  # a forward that differentiates through the prefix (forces -dE/dx by autograd.grad) runs whole
        raise SplitRefused(f"replaying the cached module calls fails ({type(err).__name__}: {str(err)[:120]})") from err
    if not close(forward.select(replayed), forward.select(two.output)):
        raise SplitRefused("replaying the cached module calls does not reproduce the model's output")
    read = trial.watch.read
    with around or contextlib.nullcontext():
        full = record_calls(forward, xs, layer, None, keep=lambda seq: seq in read)
    if not check_rows(cut_plan, full.cut_output, n):  # e.g. an expert of a mixture called on the rows routed to it
        raise SplitRefused("the layer's output (element 0) does not have one row per sample")
    if full.names[: two.cut] != two.names[: two.cut] or not all(check_rows(plans[s], full.outputs[s], n) for s in read if s in plans):
        raise SplitRefused("the probe run's module calls differ from the trial runs'")
    values = {seq: full.outputs[seq] if seq in read else one.outputs[seq] for seq in plans}
    rows_mixed = mixed_rows(n, xs[0].device)  # rows as an intervened batch has them (follows_samples)
    mixed = record_calls(forward, xs, layer, rows_mixed, keep=lambda seq: seq in read)
    checked = [seq for seq in read if seq in plans]
    if mixed.names[: two.cut] != two.names[: two.cut] or not follows_samples(
            [plans[s] for s in checked], [values[s] for s in checked], [mixed.outputs[s] for s in checked], rows_mixed):
        raise SplitRefused("cached module outputs depend on the rows' places in the batch, not on their samples")
    split = HookSplit(forward, xs, layer, modules, plans, values, set(plans) - read, index, cut_plan,
                      full.cut_output, "layer" not in read)
    return split, full
