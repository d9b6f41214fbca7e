"""The one recorder of the layers a model's pass calls, in call order (:func:`layer_calls`): which layer returned a
tensor and which layer returned that layer's input, for the readings that ask what produced a model's output rather
than what it registers last (:func:`~lightning_causal.causal.engine.state.ends_in_sigmoid`, the flow warning's
``_head_of_another_width``, :func:`~lightning_causal.audits.label_task.label_task` through :func:`output_layer`)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Call", "LayerCalls", "SHAPE_LAYERS", "calls_counted", "layer_calls", "main_output", "order_unread", "output_layer"]

def calls_counted(calls: int) -> str:
    """The one wording of a layer's calls per forward pass wherever an audit shows the count (the unit-importance bars'
    titles, the audits' notes, the layer map's): the most calls counted in the audit's passes over the probe, which
    need not be the count of another batch (an adaptive ODE solver takes the steps its batch needs; a DEQ solved from
    a warm start, fewer iterations than from a cold one).

    Examples:
        >>> calls_counted(28)
        'up to 28 calls a pass on the probe'
    """
    return f"up to {calls} calls a pass on the probe"


#: layers that move no value (walked through back to the layer that computed it)
SHAPE_LAYERS = (nn.Identity, nn.Flatten, nn.Unflatten, nn.modules.dropout._DropoutNd)


class Call:
    """One call of a leaf module (a layer holding no submodule) that returned a tensor: the ``module``, its output
    (``out()``: held by weak reference, ``None`` once freed), that output itself where it holds one value a row
    (``held``: small; else ``None``), and the call that returned the layer's first argument (``source``)."""

    __slots__ = ("module", "out", "held", "source", "dtype")

    def __init__(self, module: nn.Module, out: Tensor, source: Call | None) -> None:
        self.module, self.out, self.source, self.dtype = module, weakref.ref(out), source, out.dtype
        self.held = out if out.dim() == 0 or out.numel() == out.shape[0] else None


class LayerCalls:
    """The leaf calls of the last pass (the outermost module call) inside :func:`layer_calls`, in call order."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._made: dict[int, Call] = {}
        self._stored: dict[int, Call] = {}
        self._starts: list[tuple[nn.Module, int]] = []  # per open module call, the module and its first leaf call's index

    def made(self, value: object) -> Call | None:
        """The call of the last pass that returned ``value``: the same tensor object, else the latest whose output
        ``value`` views whole (``out.squeeze(1)``, ``out.view(n, c, h, w)``: its storage, as many elements), or ``None``."""
        if not isinstance(value, Tensor):
            return None
        call = self._made.get(id(value))
        if call is not None and call.out() is value:
            return call
        call = self._stored.get(_storage(value) or -1)  # no storage: no view
        out = call.out() if call is not None else None
        return call if out is not None and out.numel() == value.numel() and _storage(out) == _storage(value) else None

    def producer(self, value: object) -> Call | None:
        """The call that computed ``value``: :meth:`made`, walked back through the layers that move no value
        (:data:`SHAPE_LAYERS`)."""
        call = self.made(value)
        while call is not None and isinstance(call.module, SHAPE_LAYERS) and call.source is not None:
            call = call.source
        return call

    def _pre(self, module: nn.Module, args: tuple) -> None:
        if _RECORDER.get() is not self:  # another thread's pass (the hooks are global; the block is this thread's)
            return
        if not self._starts:  # a new pass: the last one's calls go
            self.calls.clear()
            self._made.clear()
            self._stored.clear()
        self._starts.append((module, len(self.calls)))

    def _post(self, module: nn.Module, args: tuple, out: object) -> None:
        if _RECORDER.get() is not self:
            return
        # this module's own entry only: a call whose pre-hook never ran (another library's pre-hook raised first)
        # leaves its parent's in place
        start = self._starts.pop()[1] if self._starts and self._starts[-1][0] is module else len(self.calls)
        leaf = not any(True for _ in module.children())
        if leaf and isinstance(out, torch.Tensor):
            call = Call(module, out, self.made(args[0]) if args else None)
            self.calls.append(call)
            self._made[id(out)] = call
            self._stored[_storage(out)] = call
        elif not leaf and out is not None:  # what computed this module's output, for label_task (not a forward that raised)
            made = self.producer(main_output(out))
            if made is None:  # a function of torch's after its layers (a clamp, a cast, a cat): the last layer it called
                made = next((c for c in reversed(self.calls[start:]) if not isinstance(c.module, SHAPE_LAYERS)), None)
                if made is not None and type(made.module).__name__ in _ACTIVATIONS:
                    # checked where read (output_layer): no work or device sync for a squeeze-and-excitation block
                    _OUTPUT_LAYER[module] = _Unchecked(made, main_output(out))
                    return
            _OUTPUT_LAYER[module] = (type(made.module).__name__ if made is not None else None,)


#: the activations whose values a function of torch's after them must keep to be taken for the model's output layer
_ACTIVATIONS = ("Sigmoid", "Softmax", "LogSoftmax")

#: at most this many values of an output are kept to check it (:class:`_Unchecked`): whole rows, at least one
_CHECKED_VALUES = 4096


class _Unchecked:
    """The last layer a module called, an activation, where a function of torch's computed the module's output after
    it: named (:func:`output_layer`) only where the output's values could have come out of it (a clamp, a cast, a
    ``torch.cat`` of batches, a log of it: :func:`_could_come_out_of`), not where a sigmoid gate, an attention softmax
    or a residual's activation was called after the head. A copy of evenly spaced entries of the output is kept, its
    axes thinned from the last (a gate's pixels before its channels and samples; not a leading corner, an image's dead
    border) to at most :data:`_CHECKED_VALUES` values (a ``Softmax``'s whole ``dim``: its rows), in the coarser of the
    layer's and the output's dtypes (a float32 softmax cast to bfloat16 is read at bfloat16's rounding), and checked
    once, where read: no view holding the whole output alive, no later in-place change read."""

    __slots__ = ("name", "rows", "dim", "_read")

    def __init__(self, made: Call, out: Tensor | None) -> None:
        self.name, self._read, self.rows = type(made.module).__name__, None, None
        ok = out is not None and out.is_floating_point() and out.dim() > 0 and out.numel() > 0
        self.dim = _softmax_dim(getattr(made.module, "dim", None), out.dim()) if ok else None
        if ok:
            t, keep = out.detach(), self.dim if self.name != "Sigmoid" else None
            for axis in reversed(range(t.dim())):  # the trailing (spatial) axes first: every sample and channel kept
                if t.numel() <= _CHECKED_VALUES:
                    break
                if axis != keep:  # evenly spaced entries, not a leading corner (an image's dead border)
                    k = max(1, t.shape[axis] * _CHECKED_VALUES // t.numel())
                    t = t[(slice(None),) * axis + (slice(None, None, -(-t.shape[axis] // k)),)]
            coarser = max((made.dtype, out.dtype), key=lambda d: torch.finfo(d).eps)
            self.rows = t.to(coarser, copy=True)

    def read(self) -> tuple[str | None]:
        if self._read is None:  # two threads reading at once compute the same answer
            self._read = (self.name if _could_come_out_of(self.name, self.dim, self.rows) else None,)
        return self._read


def _softmax_dim(dim: int | None, ndim: int) -> int:
    """A softmax's ``dim`` over an output of ``ndim`` dimensions, made non-negative (torch's legacy choice where
    ``None``: 1, or 0 for a vector)."""
    return (1 if ndim > 1 else 0) if dim is None or not -ndim <= dim < ndim else dim % ndim


def _could_come_out_of(name: str, dim: int | None, out: Tensor | None) -> bool:
    """Whether ``out``'s values could be what a ``name`` layer returned, or their log, after a function of torch's that
    moves no value out of its range: every value in [0, 1], or at most 0, for a ``Sigmoid``; rows along its ``dim``
    holding probabilities or log-probabilities for a ``Softmax`` or ``LogSoftmax``, to the rounding of their dtype
    (:func:`~lightning_causal.causal.engine.state.rows_sum_to_one`,
    :func:`~lightning_causal.causal.engine.log_probabilities.log_probability_rows`)."""
    from lightning_causal.causal.engine.log_probabilities import log_probability_rows
    from lightning_causal.causal.engine.state import rows_sum_to_one

    if out is None:
        return False
    if name == "Sigmoid":
        return bool(((out >= 0) & (out <= 1)).all() | (out <= 0).all())
    dim = _softmax_dim(dim, out.dim())
    if out.shape[dim] < 2:
        return False
    rows = out.movedim(dim, -1).reshape(-1, out.shape[dim])
    return rows_sum_to_one(rows) or log_probability_rows(rows)


def _storage(t: Tensor) -> int:
    """The address of ``t``'s storage (0 where it has none to read: a fake or meta tensor)."""
    try:
        return t.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001 - a tensor without storage is no view of a layer's output
        return 0


#: the open recorder, ``None`` outside :func:`layer_calls`
_RECORDER: ContextVar[LayerCalls | None] = ContextVar("lightning_causal_layer_calls", default=None)

#: module -> (the class name of the layer that computed its main output in its last pass inside :func:`layer_calls`,
#: ``None`` where no layer did: a function of torch's)
_OUTPUT_LAYER: weakref.WeakKeyDictionary[nn.Module, tuple[str | None] | _Unchecked] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def layer_calls() -> Iterator[LayerCalls]:
    """Record, inside the block, every pass's leaf-module calls in call order (two global forward hooks, a pre-hook
    that tells a new pass and a hook called also where the forward raises; removed on leaving, also on an exception);
    the recorder holds the last pass's calls. A block inside another shares its recorder. Each module holding others
    that a pass calls remembers, beyond the block, which layer computed its main output, or the last it called where a
    function of torch's did (:func:`output_layer`).

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 2), nn.Sigmoid(), nn.Flatten())
        >>> with layer_calls() as calls:
        ...     out = net(torch.zeros(1, 3))
        >>> type(calls.producer(out).module).__name__, [type(c.module).__name__ for c in calls.calls], output_layer(net)
        ('Sigmoid', ['Linear', 'Sigmoid', 'Flatten'], ('Sigmoid',))
    """
    open_ = _RECORDER.get()
    if open_ is not None:
        yield open_
        return
    recorder = LayerCalls()
    token = _RECORDER.set(recorder)
    pre = nn.modules.module.register_module_forward_pre_hook(recorder._pre)
    post = nn.modules.module.register_module_forward_hook(recorder._post, always_call=True)
    try:
        yield recorder
    finally:
        pre.remove()
        post.remove()
        _RECORDER.reset(token)


def open_recorder() -> LayerCalls | None:
    """The recorder of the open :func:`layer_calls` block, or ``None`` outside one."""
    return _RECORDER.get()


def main_output(out: object) -> Tensor | None:
    """The tensor an audit explains by default of a return value: the tensor itself, the first of a tuple or list, the
    ``"logits"`` of a mapping; else ``None``."""
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    elif isinstance(out, Mapping):
        out = out.get("logits")
    return out if isinstance(out, Tensor) else None


def output_layer(model: Any) -> tuple[str | None] | None:
    """``(name,)``: the class name of the layer that computed ``model``'s main output (:func:`main_output`, through
    :data:`SHAPE_LAYERS`) in its last pass inside :func:`layer_calls`; where a function of torch's computed it after the
    layers (``sigmoid(h).clamp(eps, 1 - eps)``, a ``.float()`` cast, the log of a softmax, ``torch.cat`` of two
    sigmoid heads; not of two softmax heads along the classes, whose rows sum to 2), the last layer
    ``model`` called in that pass (``(None,)``: none); ``None`` where no such pass called ``model`` (or ``model`` holds
    no module)."""
    try:
        seen = _OUTPUT_LAYER.get(model)
    except TypeError:  # not weakly referable
        return None
    return seen.read() if isinstance(seen, _Unchecked) else seen


def order_unread(model: Any) -> bool:
    """Whether no pass watched by :func:`layer_calls` has called ``model`` where one would tell
    :func:`~lightning_causal.audits.label_task.label_task` more than the last layer ``model`` registers: ``model`` holds
    submodules, an activation that names a task among them (a ``Sigmoid``, ``Softmax`` or ``LogSoftmax``).

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 2), nn.Softmax(1))
        >>> order_unread(net), order_unread(nn.Sequential(nn.Linear(3, 2)))
        (True, False)
        >>> with layer_calls():
        ...     _ = net(torch.zeros(1, 3))
        >>> order_unread(net)
        False
    """
    if not isinstance(model, nn.Module) or model in _OUTPUT_LAYER or not any(True for _ in model.children()):
        return False
    return any(type(m).__name__ in _ACTIVATIONS for m in model.modules())
