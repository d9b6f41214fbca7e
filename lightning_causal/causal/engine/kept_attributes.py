"""Tensors a model keeps as plain attributes, put back after an audit's passes: a recurrent state carried
across batches (``self.h = h.detach()``, an LSTM's ``self.state = (h.detach(), c.detach())``), which a
forward pass of the audit would otherwise leave as its own (that of its last chunk of intervened rows), so
that the next training batch would start from it. Buffers are restored by ``audit_mode`` itself."""

from __future__ import annotations

import sys
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["BATCH_STATISTICS_FIX", "TRACED_TRAINING_FIX", "KeptAttributes", "batch_statistic_norms", "buffer_of",
           "dict_attributes", "held_tensors", "helper_objects", "helper_tensors", "instance_of", "is_norm_layer", "keep_attributes", "tensor_dicts", "traced_batch_norm_in_training", "traced_training_norms", "written_tensors"]


def _tensors(value: Any) -> list[Tensor]:
    """The tensors of an attribute's value: a tensor, or a tuple or list of tensors (an LSTM's ``(h, c)``);
    never parameters (an RNN keeps its weights in a list, ``_flat_weights``, too); a weak proxy is none (a dead one fails
    ``isinstance``)."""
    if instance_of(value, Tensor):
        return [] if isinstance(value, nn.Parameter) else [value]
    if instance_of(value, (tuple, list)) and value and all(instance_of(v, Tensor) and not isinstance(v, nn.Parameter)
                                                          for v in value):
        return list(value)
    return []


def _copyable(t: Tensor) -> bool:
    """Whether ``t``'s values are kept, to be written back after an in-place update: not an inference tensor (no
    version counter), nor one computed in an autograd graph (``grad_fn``: a value every forward pass computes
    again, such as ``torch.nn.utils.weight_norm``'s ``weight``, which is reassigned, not updated in place; a
    carried state is detached). Copying those cost more than a forward pass of the model (24 weight-normed
    ``Linear(512, 512)``: 15.5 ms against 12.9 ms for 64 rows) at every term of every repair step."""
    return not t.is_inference() and t.device.type != "meta" and t.grad_fn is None


def _address(t: Tensor) -> int:
    """Where ``t``'s data lie (``-1`` for a layout without one storage, a sparse tensor): ``self.h.data = h`` moves it."""
    return t.data_ptr() if t.layout is torch.strided else -1


def buffer_of(module: nn.Module, name: str) -> Tensor | None:
    """``module``'s buffer ``name`` (``None`` where it has none by that name or holds ``None``), also of a scripted module,
    whose ``_buffers`` (torch.jit's ``OrderedDictWrapper``) has no ``get``.

    Args:
        module: a module.
        name: the buffer's name.

    Examples:
        >>> buffer_of(torch.jit.script(nn.BatchNorm1d(2)), "running_mean")
        tensor([0., 0.])
        >>> buffer_of(nn.Linear(2, 2), "h") is None
        True
    """
    buffers = module._buffers
    return buffers[name] if name in buffers else None


def is_norm_layer(module: nn.Module, kind: type[nn.Module] = nn.modules.batchnorm._NormBase) -> bool:
    """Whether ``module`` is a normalisation layer of class ``kind`` (default ``_NormBase``: BatchNorm and InstanceNorm;
    ``_BatchNorm``: BatchNorm only), also scripted: ``torch.jit.script`` keeps no Python class. A scripted module is one
    where it holds a ``_NormBase``'s ``track_running_stats`` flag (a look-alike without it is not, so that reading the
    flag never fails) and its ``original_name`` names such a class of ``torch.nn`` (``"BatchNorm1d"``), or, for a
    subclass of the user's (``class MyBN(nn.BatchNorm1d)``, ``original_name`` ``"MyBN"``), its forward runs
    ``batch_norm`` (a BatchNorm) or ``instance_norm`` (an InstanceNorm). A ``torch.jit.trace``'d module is not
    recognised: tracing keeps neither the flag nor the training mode (the graph runs the mode it was traced in).

    Args:
        module: a module.
        kind: the class of normalisation layers asked about.

    Examples:
        >>> from torch.nn.modules.batchnorm import _BatchNorm
        >>> is_norm_layer(nn.BatchNorm1d(2)), is_norm_layer(torch.jit.script(nn.BatchNorm1d(2)), _BatchNorm)
        (True, True)
        >>> is_norm_layer(torch.jit.script(nn.InstanceNorm1d(2)), _BatchNorm), is_norm_layer(torch.jit.script(nn.LayerNorm(2)))
        (False, False)
        >>> class MyBN(nn.BatchNorm1d):
        ...     pass
        >>> is_norm_layer(torch.jit.script(MyBN(2)), _BatchNorm)
        True
    """
    if isinstance(module, kind):
        return True
    if not isinstance(module, torch.jit.RecursiveScriptModule):
        return False
    if not isinstance(getattr(module, "track_running_stats", None), bool):
        return False  # no _NormBase: a look-alike named like one
    cls = getattr(nn, module.original_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.modules.batchnorm._NormBase)):
        cls = _scripted_norm_class(module)
    return cls is not None and issubclass(cls, kind)


BATCH_STATISTICS_FIX = ("build them with track_running_stats=True (and train them), or use a per-sample normalisation "
                        "(LayerNorm, GroupNorm)")


def batch_statistic_norms(model: nn.Module) -> list[str]:
    """The names of ``model``'s BatchNorm layers (also scripted) built with ``track_running_stats=False``: they
    normalise by the batch's statistics even in eval mode, so a sample's output depends on its batch, and a pass of
    one sample fails in torch ("Expected more than 1 value per channel").

    Args:
        model: the model.

    Examples:
        >>> batch_statistic_norms(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2, track_running_stats=False), nn.BatchNorm1d(2)))
        ['1']
    """
    return [name for name, m in model.named_modules()
            if is_norm_layer(m, nn.modules.batchnorm._BatchNorm) and not m.track_running_stats]


TRACED_TRAINING_FIX = ("trace the model in eval mode (`model.eval(); torch.jit.trace(model, x)`), whose graph then "
                       "normalises by the running statistics, or pass the eager model")


def traced_training_norms(model: nn.Module) -> list[str]:
    """The names of ``model``'s modules made by ``torch.jit.trace`` whose graph runs ``batch_norm`` in training mode: a
    BatchNorm traced while the model was in training mode (also saved and loaded back, ``torch.jit.load``;
    :func:`traced_batch_norm_in_training`). The trace fixes the mode into the graph, so in eval mode too
    it normalises by the batch's statistics (and updates the running ones), and a sample's output depends on its batch.

    Args:
        model: the model.

    Examples:
        >>> import warnings
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     in_train = torch.jit.trace(net.train(), torch.randn(4, 2))
        ...     in_eval = torch.jit.trace(net.eval(), torch.randn(4, 2))
        >>> traced_training_norms(in_train.eval()), traced_training_norms(in_eval)
        (['1'], [])
    """
    return [name for name, m in model.named_modules() if traced_batch_norm_in_training(m)]


#: a compiled module's answer, by the module (weakly): not by its type's qualified name, which a module loaded from a file
#: (``torch.jit.load``) keeps as its tracing process named it, so that an eval-traced file and a train-traced one
#: loaded beside each other, or beside a trace of this process, may share it
_TRACED_TRAINING: weakref.WeakKeyDictionary[nn.Module, bool] = weakref.WeakKeyDictionary()


def traced_batch_norm_in_training(module: nn.Module) -> bool:
    """Whether ``module`` is a compiled module whose own graph calls ``aten::batch_norm`` with ``training`` a constant
    ``True``: a BatchNorm traced (``torch.jit.trace``) in training mode, also saved and loaded back (``torch.jit.load``,
    a ``RecursiveScriptModule`` then); it normalises by the batch's statistics in either mode. A scripted BatchNorm
    (``torch.jit.script``) keeps the mode a flag and is none. Read from its graph once per module (0.1 ms), as a
    training step asks it of every module (``repair/objective.batch_statistics_in_use``).

    Args:
        module: a module.

    Examples:
        >>> import io, warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     bn = torch.jit.trace(nn.BatchNorm1d(2).train(), torch.randn(4, 2))
        >>> traced_batch_norm_in_training(bn.eval()), traced_batch_norm_in_training(nn.BatchNorm1d(2))
        (True, False)
        >>> saved = io.BytesIO()
        >>> torch.jit.save(bn, saved)
        >>> _ = saved.seek(0)
        >>> traced_batch_norm_in_training(torch.jit.load(saved)), traced_batch_norm_in_training(torch.jit.script(nn.BatchNorm1d(2)))
        (True, False)
    """
    if not isinstance(module, torch.jit.ScriptModule):
        return False
    found = _TRACED_TRAINING.get(module)
    if found is None:
        try:
            nodes = list(module.graph.nodes())
        except RuntimeError:  # no forward traced or compiled
            nodes = []
        _TRACED_TRAINING[module] = found = any(
            node.kind() == "aten::batch_norm" and (training := list(node.inputs())[5].node()).kind() == "prim::Constant"
            and training.output().toIValue() is True for node in nodes)
    return found


#: a scripted module's answer, by the module (weakly), as :data:`_TRACED_TRAINING`: not by its type's qualified name, which
#: the files of other processes keep as they named it, so that two files holding a class of the same name (``Block``: a
#: BatchNorm subclass in one, a look-alike holding the ``track_running_stats`` flag in the other) loaded beside each
#: other share it
_SCRIPTED_NORMS: weakref.WeakKeyDictionary[nn.Module, type[nn.Module] | None] = weakref.WeakKeyDictionary()


def _scripted_norm_class(module: torch.jit.RecursiveScriptModule) -> type[nn.Module] | None:
    """``nn.BatchNorm1d`` where the scripted ``module``'s forward runs ``batch_norm``, ``nn.InstanceNorm1d`` where it
    runs ``instance_norm`` (a scripted subclass of either, which keeps no Python class), else ``None``; read from its
    inlined graph once per module (0.5 ms)."""
    if module not in _SCRIPTED_NORMS:
        try:
            graph = str(module.inlined_graph)
        except RuntimeError:  # no forward compiled
            graph = ""
        _SCRIPTED_NORMS[module] = (nn.BatchNorm1d if "aten::batch_norm" in graph else
                                   nn.InstanceNorm1d if "aten::instance_norm" in graph else None)
    return _SCRIPTED_NORMS[module]


def _trained_statistics(m: nn.Module) -> bool:
    """Whether ``m``'s buffers are statistics that training passes update, whoever's rows they are: a normalisation
    layer's running statistics, a fake-quant module's observer range (:meth:`KeptAttributes.changes` does not name them,
    ``values=True`` does not put them back)."""
    from lightning_causal.causal.engine.state import is_fake_quant  # state imports this module

    return is_norm_layer(m) or is_fake_quant(m)


_HOLDERS = (Tensor, tuple, list)  # the values that may hold tensors
_PLAIN = frozenset({dict, OrderedDict, bool, int, float, str, type(None)})  # a module's other attributes: passed by
_ABSENT = object()  # at their type, faster than isinstance (measured: 0.2 against 0.7 ms on a 300-module MLP)
#: the attributes `numbers=True` (and `values=True`) puts back too, where they held one of these before the passes and
#: hold one after: a number (a call counter, self.calls += 1), a string, a bool or None (self.mode = "long")
_SCALARS = frozenset({int, float, bool, str, type(None), frozenset})  # a frozenset reassigned too, self.tags = self.tags | {k}
_NUMPY_SCALARS = (np.number, np.bool_, np.str_)  # the same held as numpy scalars (self.avg = np.mean(x); += on one)
_DICTS = frozenset({dict, OrderedDict})  # a cache the model writes into, `self.cache["W"] = w`: its items are kept
_MODULE_DICTS = frozenset(name for name, v in vars(nn.Module()).items() if isinstance(v, dict))  # nn.Module's own
_MODULE_SETS = frozenset(name for name, v in vars(nn.Module()).items() if isinstance(v, set))  # its non-persistent buffers


def _scalar(v: Any) -> bool:
    """Whether ``v`` is a value the numbers' rule puts back: one of :data:`_SCALARS` (a frozenset too; by type first, as :data:`_PLAIN`),
    a numpy scalar of them (``np.float64``, ``np.int64``, ``np.bool_``, ``np.str_``), a numpy array (``np.array(0.5)``,
    a running mean ``np.zeros(8)``) or a set (:func:`_in_place`), or a dict (of no tensors: one holding tensors is put
    back as those are)."""
    return type(v) in _SCALARS or isinstance(v, _NUMPY_SCALARS) or type(v) in _IN_PLACE or _is_dict(v)


#: the values a forward may update in place that :func:`keep_attributes` copies (with ``numbers``): a numpy array
#: (``self.t *= 0.9`` on ``np.array(1.0)``, ``self.mean += x.mean(0)`` on ``np.zeros(8)``) and a set (``self.seen.add(k)``)
_IN_PLACE = frozenset({np.ndarray, set})

#: the largest numpy array (bytes) and set (items) :func:`keep_attributes` copies: beyond, a copy at every audit pass
#: would cost more than the passes (a lookup table of 100 MB), and the values are left as the passes leave them
KEPT_ARRAY_BYTES, KEPT_SET_ITEMS = 2**20, 2**16
#: the most bytes of arrays and items of sets one :func:`keep_attributes` copies in all (16 arrays and 4 sets at their
#: bounds): a model keeping a thousand arrays of 1 MiB would otherwise be copied whole (1 GB) at every audit pass; the
#: arrays and sets past it, in the order of ``model.modules()``, are left as the passes leave them, as a larger one is
KEPT_TOTAL_BYTES, KEPT_TOTAL_SET_ITEMS = 16 * KEPT_ARRAY_BYTES, 4 * KEPT_SET_ITEMS
#: the most bytes of the helper objects' tensors (:func:`helper_objects`) one :func:`keep_attributes` copies in all (8 MiB)
#: before it asks whether an object is written: one past it (in the order of :func:`helper_objects`) is copied until a
#: keep around a pass (:data:`PASSES`) has seen it unwritten (its tensors' versions unchanged at
#: :meth:`KeptAttributes.restore`: a ``torch_ema``-style
#: shadow list of a model's weights, 16.5 MB, 24 ms a copy, several copies an audit), then no longer (:data:`_READ_ONLY`);
#: its versions are still noted, so that :meth:`KeptAttributes.changes` sees a write, and where such an uncopied object
#: is found written (read-only at first, written later) ``restore``, which cannot put its values back, warns once per
#: object (:data:`UNCOPIED_HELPER_FIX`) and the object is copied again from then on (:data:`_WRITTEN`); one reassigned is
#: put back; one that takes no weak reference is always copied. An object written in eval mode is thus put back at every
#: audit, bit for bit. The repair module's keeps copy whatever the size (``helper_bytes=math.inf``): its terms' passes run
#: in training mode and would leave their rows in a bank (a 9 MB FIFO store: 64 of the terms' rows beside the task's)
KEPT_HELPER_BYTES = 8 * KEPT_ARRAY_BYTES

#: the way out :meth:`KeptAttributes.restore`'s warning gives for a helper object past :data:`KEPT_HELPER_BYTES` written
UNCOPIED_HELPER_FIX = (
    "register its tensors as buffers of a module (`self.register_buffer(name, t, persistent=False)`: buffers are put "
    "back whatever their size), or write it in training mode only (`if self.training:`), which the audits' passes "
    "(eval mode) never run")


def _in_place(v: Any) -> bool:
    """Whether ``v`` is a value that :func:`keep_attributes` copies for :meth:`KeptAttributes.restore` to put back an
    in-place update: a writeable numpy array of numbers, bools or strings of at most :data:`KEPT_ARRAY_BYTES` (a 0-d one,
    ``np.array(0.5)``, too; a numpy scalar, ``np.float32(0.5)``, is immutable: set back as the other numbers), or a set of
    at most :data:`KEPT_SET_ITEMS` items."""
    if type(v) is np.ndarray:
        return v.flags.writeable and not v.dtype.hasobject and v.nbytes <= KEPT_ARRAY_BYTES
    return type(v) is set and len(v) <= KEPT_SET_ITEMS


def _copies(values: Any, left: list[int]) -> list[tuple[Any, Any]]:
    """``(value, copy)`` of each value of ``values`` that :func:`_in_place` takes, while ``left`` (the bytes of arrays
    and the items of sets still to copy, :data:`KEPT_TOTAL_BYTES`, :data:`KEPT_TOTAL_SET_ITEMS`; updated) allows."""
    found = []
    for v in values:
        if type(v) in _IN_PLACE and _in_place(v):
            k, size = (0, v.nbytes) if type(v) is np.ndarray else (1, len(v))
            if size <= left[k]:
                left[k] -= size
                found.append((v, v.copy()))
    return found


def _put_back_in_place(value: Any, copy: Any) -> None:
    """Give an array or a set of :func:`_copies` its copy's values back, where they changed in place."""
    if type(value) is set:
        if value != copy:
            value.clear()
            value.update(copy)
    elif value.shape == copy.shape and value.dtype == copy.dtype and value.flags.writeable and value.tobytes() != copy.tobytes():
        value[...] = copy


def _is_dict(v: Any) -> bool:
    """Whether an attribute's value is a dict the model may write tensors into: a ``dict``, an ``OrderedDict`` or
    another subclass (``collections.defaultdict``); by type first, as :data:`_PLAIN`."""
    return type(v) in _DICTS or (type(v) not in _PLAIN and instance_of(v, dict))


def _own_tensors(d: dict[Any, Any]) -> list[Tensor]:
    """The tensors a dict holds as values (a tensor, or a tuple or list of them), not those of the dicts it holds."""
    return [t for v in d.values() if instance_of(v, _HOLDERS) for t in _tensors(v)]


def _nested_dicts(d: dict[Any, Any], seen: set[int]) -> list[dict[Any, Any]]:
    """``d`` and the dicts it holds as values, at any depth (a cache per layer, ``self.cache["enc"]["W"] = w``), each
    once: not those in ``seen`` (the ids of the dicts found so far, a dict two modules share too), which it adds to."""
    found, todo = [], [d]
    while todo:
        x = todo.pop()
        if id(x) not in seen:
            seen.add(id(x))
            found.append(x)
            todo += [v for v in x.values() if _is_dict(v)]
    return found


def _dict_tensors(d: dict[Any, Any]) -> list[Tensor]:
    """The tensors a dict attribute holds as values (a tensor, or a tuple or list of them), also in the dicts it holds."""
    return [t for x in _nested_dicts(d, set()) for t in _own_tensors(x)]


def _lists(items: dict[Any, Any]) -> dict[Any, list[Any]]:
    """A copy of the items of each list among ``items``' values (a module's attributes, a dict attribute's items): a
    list the forward appends to (``self.hist.append(h.detach())``, ``self.cache["hist"].append(...)``) is the same
    object after the pass, so its items are what :meth:`KeptAttributes.changes` compares and :meth:`KeptAttributes.restore`
    puts back."""
    return {k: list(v) for k, v in items.items() if instance_of(v, list)}


def _list_moved(now: Any, kept: list[Any]) -> bool:
    """Whether the list ``now`` holds other items than ``kept`` (:func:`_lists`): more, fewer or others."""
    return len(now) != len(kept) or any(a is not b for a, b in zip(now, kept))


def _plain_sequence(v: Any) -> bool:
    """Whether an attribute's value is a list or tuple holding no tensor (a log of numbers reassigned,
    ``self.log = self.log + [float(loss)]``; the shape last seen, ``self.seen = tuple(x.shape)``, also as a
    ``torch.Size``, ``self.seen = x.shape``, or a named tuple: subclasses too), which
    :meth:`KeptAttributes.restore` sets back as it gives a list its items back; not one holding parameters (an RNN's
    ``_flat_weights``, which only ``_apply``, never a pass, reassigns, with its ``_flat_weight_refs``)."""
    return instance_of(v, (list, tuple)) and not any(instance_of(i, Tensor) for i in v)


def _holds_tensors(v: Any) -> bool:
    """Whether an attribute's value holds tensors: a tensor, a tuple or list of them, a dict holding them."""
    return bool(_tensors(v)) if instance_of(v, _HOLDERS) else _is_dict(v) and bool(_dict_tensors(v))


def dict_items(model: nn.Module) -> list[tuple[dict[Any, Any], dict[Any, Any]]]:
    """Each dict attribute of ``model``'s modules (``nn.Module``'s own aside; the dicts they hold too, each once), and
    each module's buffers and attributes (``_buffers``, ``vars``), with a copy of its items, for :func:`put_back_items`
    after a pass whose writes are never the model's: a ``torch.fx`` trace, which would leave its ``Proxy`` objects (no
    tensors: :meth:`KeptAttributes.restore` does not take them) in a cache the forward writes into and reads
    (``self.cache["W"] = w``), in a buffer it reassigns (``self.max_seen = torch.maximum(...)``) or in an attribute it
    sets (``self.last = h``).

    Args:
        model: the model.

    Examples:
        >>> m = nn.Linear(2, 2)
        >>> m.cache = {}
        >>> kept = dict_items(m)
        >>> m.cache["W"] = "a proxy"
        >>> put_back_items(kept)
        >>> m.cache
        {}
    """
    kept = dict_attributes(model)
    # and each module's buffers and attributes: a trace of the model (or of a shallow copy, whose `_buffers` and
    # submodules are the model's) writes its Proxy into a buffer the forward reassigns (`self.max_seen =
    # torch.maximum(...)`) and an attribute it sets (`self.last = h`); a scripted module's wrappers are no dicts
    return kept + [(d, dict(d)) for m in model.modules() for d in (m._buffers, vars(m)) if isinstance(d, dict)]


def dict_attributes(model: nn.Module) -> list[tuple[dict[Any, Any], dict[Any, Any]]]:
    """Each dict attribute of ``model``'s modules (``nn.Module``'s own aside; the dicts they hold too, each once) with a
    copy of its items: a cache the forward writes into (``self.cache[task] = gen(task)``), for :func:`put_back_items` or
    :func:`written_tensors`.

    Args:
        model: the model.

    Examples:
        >>> m = nn.Linear(2, 2)
        >>> m.cache = {"enc": {}}
        >>> len(dict_attributes(m))
        2
    """
    seen: set[int] = set()
    return [(d, dict(d)) for m in model.modules() for name, v in vars(m).items()
            if _is_dict(v) and name not in _MODULE_DICTS for d in _nested_dicts(v, seen)]


def tensor_dicts(model: nn.Module) -> list[str]:
    """The names of the dict attributes of ``model``'s modules (and of the dicts they hold) that hold tensors: a cache of
    generated weights per task id (``cache``), which a forward reads instead of calling the module that made them.

    Examples:
        >>> m = nn.Sequential(nn.Linear(2, 2))
        >>> m[0].cache, m[0].calls = {0: torch.ones(1)}, {"n": 0}
        >>> tensor_dicts(m)
        ['0.cache']
    """
    held = [d for d, _ in dict_attributes(model) if _own_tensors(d)]
    if not held:
        return []
    names = _dict_names(model)
    return [names.get(id(d), "a dict") for d in held]


def written_tensors(model: nn.Module, kept: list[tuple[dict[Any, Any], dict[Any, Any]]]) -> list[str]:
    """The items of the dicts of :func:`dict_attributes` that now hold tensors where they held other values or none (a
    task's generated weights cached by a pass under :func:`~lightning_causal.causal.engine.intervention_hooks.intervene`,
    which later passes would read instead of computing them), named as the model holds them: ``cache[1]``, ``hyper.cache['a']``.
    Items of plain values (a call counter) are none.

    Args:
        model: the model whose dicts ``kept`` holds.
        kept: what :func:`dict_attributes` returned.

    Examples:
        >>> m = nn.Sequential(nn.Linear(2, 2))
        >>> m[0].cache, m[0].calls = {0: torch.ones(1)}, {"n": 0}
        >>> kept = dict_attributes(m)
        >>> m[0].cache[1], m[0].calls["n"] = torch.zeros(1), 1
        >>> written_tensors(m, kept)
        ['0.cache[1]']
    """
    written = [(d, k) for d, items in kept for k, v in d.items() if (k not in items or items[k] is not v) and _holds_tensors(v)]
    if not written:
        return []
    names = _dict_names(model)
    return [f"{names.get(id(d), 'a dict')}[{k!r}]" for d, k in written]


def put_back_items(kept: list[tuple[dict[Any, Any], dict[Any, Any]]]) -> None:
    """Give each dict of :func:`dict_items` its items back, where they changed.

    Args:
        kept: what :func:`dict_items` returned.
    """
    for d, items in kept:
        if d.keys() != items.keys() or any(d[k] is not v for k, v in items.items()):
            d.clear()
            d.update(items)


@dataclass
class KeptAttributes:
    """What :func:`keep_attributes` saw: per module, a shallow copy of its attributes (``vars``) and the items of its
    lists; the items of its dicts (not ``nn.Module``'s own) and of the lists they hold; a copy of each tensor attribute with its version; with ``reassigned_buffers``, the buffers; with ``values``,
    a copy of each buffer's values (``values``: the buffer, its version and the copy); with ``values`` or ``numbers``
    (``numbers``), the attributes holding numbers, strings, bools or ``None`` are put back too."""

    entries: list[tuple[nn.Module, dict[str, Any], dict[str, list[Any]]]] = field(default_factory=list)
    copies: list[tuple[Tensor, int, int, Tensor | None]] = field(default_factory=list)  # None: uncopied
    buffers: list[tuple[nn.Module, str, Tensor | None, int]] = field(default_factory=list)
    values: list[tuple[Tensor, int, Tensor]] | None = None
    numbers: bool = False
    dicts: list[tuple[dict[Any, Any], dict[Any, Any], dict[Any, list[Any]]]] = field(default_factory=list)
    arrays: list[tuple[Any, Any]] = field(default_factory=list)  # with `numbers`: numpy arrays and sets, a copy (_in_place)
    #: the helper objects past :data:`KEPT_HELPER_BYTES`: ``(name, object, bytes, copied, rows)``, ``rows`` the range of
    #: ``copies`` that holds its tensors with their versions and addresses (an uncopied one's with no copy), for
    #: :meth:`restore` to tell whether the passes wrote into them
    past_budget: list[tuple[str, object, int, bool, range]] = field(default_factory=list)
    passes: int = 0  # :data:`PASSES` when kept

    def restore(self) -> None:
        """Put back every tensor attribute that was reassigned, set or added, and undo in-place updates.

        An attribute that held tensors, or holds tensors now, is set back to the very object it held (``None``,
        an empty tuple, any value), or removed where it was absent (a dict holding tensors so too, ``self.cache = {"W": w}``);
        a list gets its items back, whatever they are (also one a dict holds, ``self.cache["hist"].append(h.detach())``;
        a log of numbers, ``self.log.append(float(x.mean()))``; a list or tuple of no tensors reassigned,
        ``self.log = self.log + [x]``, is set back to the very object, :func:`_plain_sequence`), and so does a dict (a ``defaultdict`` too, and a dict it holds at any depth,
        ``self.cache["enc"]["h"] = h``) that held tensors or holds them now (``self.cache["W"] = w``, set in place); a
        tensor updated in
        place (``self.h.copy_(h)``) or given other data (``self.h.data = h``) gets its values back; a buffer noted with ``reassigned_buffers`` and
        reassigned since (``self.h = h.detach()`` on a registered buffer) is set back to the very tensor. With ``values``
        (:func:`keep_attributes`), a buffer updated in place (``self.steps += 1``, ``spectral_norm``'s ``u``) gets its
        values back too, without a new version (a graph that saved it still runs backward), and an attribute that held a
        number (``self.calls += 1``), a string, a bool, a frozenset or ``None`` (``self.mode = "long"``, ``self.flag = True``) and
        holds one of them now gets its value back, also held as a numpy scalar (``np.float64``), as does a numpy array
        (``np.array(0.5)``, ``np.zeros(8)``) or a set, also updated in place (``self.t *= 0.9``, ``self.mean += m``,
        ``self.seen.add(k)``; one of at most :data:`KEPT_ARRAY_BYTES` bytes or :data:`KEPT_SET_ITEMS` items, also held in
        a dict, ``self.stats["mean"] += m``: :func:`_in_place`, within :data:`KEPT_TOTAL_BYTES` and
        :data:`KEPT_TOTAL_SET_ITEMS` in all), and a dict of no tensors, also updated in
        place (``self.stats["n"] = rows``), and an attribute the passes created (``if not hasattr(self, "calls"):
        self.calls = 0``, ``self.last_rows = n``) is removed, whatever it holds (with ``numbers``, only that:
        :func:`_scalar`; what the model registers, a module, a parameter or a buffer, is no such attribute).
        """
        for m, name, b, _ in self.buffers:
            if buffer_of(m, name) is not b:
                m._buffers[name] = b
        for m, before, items in self.entries:
            now = vars(m)
            changed = [name for name, v in now.items() if v is not before.get(name, _ABSENT)]
            changed += [name for name in before if name not in now]
            for name in changed:
                old, new = before.get(name, _ABSENT), now.get(name)
                if self.numbers and old is _ABSENT:  # created by the passes (`if not hasattr(self, "calls")`): removed
                    del now[name]
                elif self.numbers and _scalar(old) and _scalar(new):
                    now[name] = old
                elif _holds_tensors(new) or _holds_tensors(old) or _plain_sequence(new) or _plain_sequence(old):
                    # also a dict replaced, `self.cache = {"W": w}`, and a log reassigned, `self.log = self.log + [x]`
                    if old is _ABSENT:
                        del now[name]
                    else:
                        now[name] = old
            _put_back_lists(before, items)
        for d, kept_items, lists in self.dicts:
            if (d.keys() != kept_items.keys() or any(d[k] is not v for k, v in kept_items.items())) and (
                    self.numbers or _dict_tensors(d) or _dict_tensors(kept_items)):  # numbers: `self.stats["n"] = rows` too
                d.clear()
                d.update(kept_items)
            _put_back_lists(kept_items, lists)
        for a, value in self.arrays:  # `self.t *= 0.9` on an array, `self.seen.add(k)`: in place
            _put_back_in_place(a, value)
        written = _note_written(self.past_budget, self.copies, self.passes)  # before the copies are put back (a new version)
        with torch.no_grad():
            for t, version, address, copy in self.copies:
                if copy is None:  # not copied (seen unwritten before, _READ_ONLY): what the passes wrote stays
                    continue
                if t.shape != copy.shape or _address(t) != address:  # `self.h.data = h`: no new version
                    t.data = copy
                elif t._version != version:
                    t.copy_(copy)
            for b, version, copy in self.values or ():
                if b._version != version and b.shape == copy.shape:
                    b.data.copy_(copy)  # through `.data`: no new version for a graph that saved the buffer
        for name, obj, size in written:
            _warn_uncopied(name, obj, size)


    def changed(self, model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
        """The state the passes since :func:`keep_attributes` changed, as ``(name, shape)``: :meth:`changes` without
        the way.

        Args:
            model: the model :func:`keep_attributes` was given (its module names are read for the names).
        """
        return [(name, shape) for name, shape, _ in self.changes(model)]

    def changes(self, model: nn.Module) -> list[tuple[str, tuple[int, ...], bool]]:
        """The state the passes since :func:`keep_attributes` changed, as ``(name, shape, set)`` (the first tensor's
        shape now, ``()`` where none is left; ``set``: the tensor was set, reassigned, removed, given other data or
        other list items, not updated in place in its tensor): a tensor attribute (or a tuple or list of them) set, reassigned or removed,
        unless what it holds now is computed in the autograd graph (``torch.nn.utils.weight_norm``'s ``weight``, which
        every pass computes again; a carried state is detached); a list given other items, or a list or tuple of no
        tensors reassigned (``self.log = self.log + [x]``: shape ``()``); a kept tensor updated in
        place or given other data; a list a dict attribute holds given other items (``self.cache["hist"].append(h)``:
        ``cache['hist']``, the shape its first tensor's); with ``reassigned_buffers``, a buffer reassigned or updated in place, normalisation
        and fake-quant modules' aside (their batch statistics and observers are told apart by the module's type); an
        item of a dict attribute (at any depth) set, reassigned, removed or updated in place as a tensor attribute
        would be, named by the attribute and its key (``self.cache["h"] = h.detach()``: ``cache['h']``); an attribute
        or an item set to a dict holding tensors, or from one (``self.state = {"h": h.detach()}`` at every batch:
        ``state``, the shape its first tensor's).
        Nothing is put back; :meth:`restore` still can.

        Args:
            model: the model :func:`keep_attributes` was given (its module names are read for the names).
        """
        names = _holder_names(model, self.entries)
        kept = {id(t): (version, address, t.shape) for t, version, address, _ in self.copies}
        found: list[tuple[str, tuple[int, ...], bool]] = []

        def note(m: nn.Module, name: str, value: Any, set_: bool = True) -> None:
            at = names.get(id(m), "")
            found.append((f"{at}.{name}" if at else name, _first_shape(value), set_))

        for m, before, items in self.entries:
            now = vars(m)
            for name in [*now, *(k for k in before if k not in now)]:
                old, new = before.get(name, _ABSENT), now.get(name, _ABSENT)
                if new is old and name in items and _list_moved(new, items[name]):
                    note(m, name, new)
                elif (set_ := _value_change(old, new, kept)) is not None:
                    note(m, name, new, set_)
                elif new is not old and (_plain_sequence(new) or _plain_sequence(old)):  # as a list given other items
                    note(m, name, new)
        for m, name, b, version in self.buffers:
            if _trained_statistics(m):
                continue
            now_b = buffer_of(m, name)
            if now_b is not b or (b is not None and not b.is_inference() and b._version != version):
                note(m, name, now_b, now_b is not b)
        found += self._dict_changes(model, kept)
        return found

    def _dict_changes(self, model: nn.Module, kept: dict[int, tuple[int, int, torch.Size]]) -> list[tuple[str, tuple[int, ...], bool]]:
        """:meth:`changes` of the items of the dicts kept (a carried state kept in a cache, ``self.cache["h"] = h.detach()``),
        each named by the attribute and its keys (``cache['h']``), as the tensor attributes are."""
        found: list[tuple[str, tuple[int, ...], bool]] = []
        names: dict[int, str] | None = None
        for d, items, lists in self.dicts:
            for key in [*d, *(k for k in items if k not in d)]:
                old, new = items.get(key, _ABSENT), d.get(key, _ABSENT)
                if new is old and key in lists and _list_moved(new, lists[key]):  # as for attributes
                    set_: bool | None = True
                else:
                    set_ = _value_change(old, new, kept)
                if set_ is not None:
                    names = _dict_names(model) if names is None else names
                    found.append((f"{names.get(id(d), '<dict>')}[{key!r}]", _first_shape(new), set_))
        return found


class _Marks:
    """A set of objects held weakly by their id (not by their ``__hash__``/``__eq__``, which a user's class may define or
    refuse): an object is removed when it dies, so that a new one given its id is not taken for it."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[object]] = {}

    def __contains__(self, obj: object) -> bool:
        ref = self._refs.get(id(obj))
        return ref is not None and ref() is obj

    def add(self, obj: object) -> bool:
        """Add ``obj``; ``False`` where it takes no weak reference (``__slots__`` without ``__weakref__``)."""
        key = id(obj)
        try:
            self._refs[key] = weakref.ref(obj, lambda ref, key=key: self._refs.get(key) is ref and self._refs.pop(key))
        except TypeError:
            return False
        return True

    def discard(self, obj: object) -> None:
        if obj in self:
            del self._refs[id(obj)]


#: the passes :class:`~lightning_causal.causal.engine.forward.Forward` has run, in all: a keep marks an object read-only
#: only where one ran since it was taken (a keep around no pass, a refusal before any, sees every object unwritten).
#: Of every model, not per model: a keep is taken of one module (the LightningModule, an audit's model) where Forward
#: runs another object (a wrapper, a child, a compiled model's ``_orig_mod``), which a count per model would miss; a keep
#: around another model's passes only marks its objects read-only as a pass that left them unwritten would (a write
#: later is warned of once, and the object copied again: :func:`_note_written`)
PASSES = [0]

#: the helper objects past :data:`KEPT_HELPER_BYTES` a keep saw unwritten (not copied since), those found written (copied
#: whatever happens next), and those :func:`_warn_uncopied` warned of
_READ_ONLY, _WRITTEN, _UNCOPIED_WARNED = _Marks(), _Marks(), _Marks()


def _note_written(past_budget: list[tuple[str, object, int, bool, range]],
                  copies: list[tuple[Tensor, int, int, Tensor | None]], passes: int) -> list[tuple[str, object, int]]:
    """Mark each helper object past :data:`KEPT_HELPER_BYTES` (:attr:`KeptAttributes.past_budget`) read-only where the
    passes wrote none of its tensors (its rows of ``copies``) in place (versions and addresses unchanged) and a pass ran
    since the keep (:data:`PASSES` was ``passes``), else written; return ``(name, object, bytes)`` of those written that
    were not copied (read-only until now), for :func:`_warn_uncopied`."""
    found = []
    for name, obj, size, copied, rows in past_budget:
        if any((t._version, _address(t)) != (version, address) for t, version, address, _ in (copies[i] for i in rows)):
            _READ_ONLY.discard(obj)
            _WRITTEN.add(obj)
            if not copied:
                found.append((name, obj, size))
        elif PASSES[0] != passes and obj not in _WRITTEN:
            _READ_ONLY.add(obj)
    return found


def _warn_uncopied(name: str, obj: object, size: int) -> None:
    """Warn, once per object, that the passes wrote in place into helper object ``name`` (``obj``, its tensors ``size``
    bytes), which :func:`keep_attributes` did not copy (:data:`KEPT_HELPER_BYTES`), so the writes stay."""
    if obj in _UNCOPIED_WARNED:  # an uncopied object takes a weak reference (_READ_ONLY)
        return
    _UNCOPIED_WARNED.add(obj)
    warnings.warn(
        f"The model's helper object {name!r} ({type(obj).__qualname__}) holds {size / 1e6:.3g} MB of tensors, past the "
        f"{KEPT_HELPER_BYTES // 2**20} MiB that an audit's passes copy to put such an object back "
        "(kept_attributes.KEPT_HELPER_BYTES), and the passes wrote into it in place: the writes stay, so training goes on "
        f"from them. To have it put back, {UNCOPIED_HELPER_FIX}.", UserWarning, stacklevel=outside_package())


def _holder_names(model: nn.Module, entries: list[tuple[Any, dict[str, Any], dict[str, list[Any]]]]) -> dict[int, str]:
    """The name of each module of ``model`` by id, and of each helper object (:func:`helper_objects`, ``store``) where
    ``entries`` (:attr:`KeptAttributes.entries`) hold one: their changes are named ``store.keys``."""
    names = {id(m): prefix for prefix, m in model.named_modules()}
    if any(not isinstance(m, nn.Module) for m, _, _ in entries):
        names.update((id(obj), name) for name, obj in helper_objects(model))
    return names


def _put_back_lists(holder: dict[Any, Any], lists: dict[Any, list[Any]]) -> None:
    """Give each list of :func:`_lists` that still is ``holder``'s value its items back, where they changed, whatever
    they are: tensors (``self.hist.append(h.detach())``, ``self.cache["hist"].append(...)``) or not (a log of numbers,
    ``self.log.append(float(x.mean()))``, which a forward reading it would read the audit's entries from), as
    :meth:`KeptAttributes.changes` names them."""
    for key, kept in lists.items():
        value = holder[key]
        if _list_moved(value, kept):
            value[:] = kept


def _held(value: Any) -> list[Tensor]:
    """The tensors ``value`` holds as a state would: a tensor, a tuple or list of them, a dict holding them (at any
    depth, ``{"h": h.detach()}``)."""
    if isinstance(value, _HOLDERS):
        return _tensors(value)
    return _dict_tensors(value) if _is_dict(value) else []


def _first_shape(value: Any) -> tuple[int, ...]:
    """The shape of the first tensor ``value`` holds (:func:`_held`), ``()`` where it holds none."""
    tensors = _held(value)
    return tuple(tensors[0].shape) if tensors else ()


def _value_change(old: Any, new: Any, kept: dict[int, tuple[int, int, torch.Size]]) -> bool | None:
    """How an attribute's or a dict item's value changed since :func:`keep_attributes` (``old``, ``new``; ``_ABSENT``
    where there was or is none), as :meth:`KeptAttributes.changes` names it: ``True`` where it was set, reassigned or
    removed (also to or from a dict holding tensors, ``self.state = {"h": h.detach()}``) or a kept tensor of it was
    given other data (``self.h.data = h``), ``False`` where a kept tensor of it was updated in place, ``None`` where no
    state changed (no tensor held before or now, or what it holds now is computed in the autograd graph: a value every
    pass computes again, ``weight_norm``'s ``weight``). The items of a dict it still holds are :meth:`changes`' own."""
    if type(new) in _PROXIES or type(old) in _PROXIES:  # a weak proxy holds no state of the model's
        return None
    if new is not old:
        tensors = _held(new)
        computed = bool(tensors) and all(t.grad_fn is not None for t in tensors)
        return None if computed or not (tensors or _held(old)) else True
    moved = [t for t in (_tensors(new) if isinstance(new, _HOLDERS) else [])
             if id(t) in kept and (t._version, _address(t), t.shape) != kept[id(t)]]
    return any((_address(t), t.shape) != kept[id(t)][1:] for t in moved) if moved else None


def _dict_names(model: nn.Module) -> dict[int, str]:
    """The name of each dict attribute of ``model``'s modules and of its helper objects (:func:`helper_objects`) and of
    the dicts they hold, by id: ``enc.cache``, ``cache['enc']``, ``store.bank``."""
    names: dict[int, str] = {}
    for prefix, m in [*model.named_modules(), *helper_objects(model)]:  # a helper object's too, `store.bank['q']`
        at = f"{prefix}." if prefix else ""
        todo = [(f"{at}{name}", v) for name, v in vars(m).items() if _is_dict(v) and name not in _MODULE_DICTS]
        while todo:
            name, d = todo.pop()
            if id(d) not in names:
                names[id(d)] = name
                todo += [(f"{name}[{k!r}]", v) for k, v in d.items() if _is_dict(v)]
    return names


#: the packages whose objects a module may hold that are no state of the model's (an optimizer, a trainer)
_FRAMEWORKS = frozenset({"torch", "lightning", "pytorch_lightning", "lightning_causal"})


#: the standard library's packages: their objects a module holds (a logger, a lock, a partial) are no user's state
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"builtins"}

#: the types of ``weakref.proxy``'s objects: a reference to another's object, never a model's state of its own
_PROXIES = frozenset(weakref.ProxyTypes)


def instance_of(value: Any, types: type | tuple[type, ...]) -> bool:
    """``isinstance(value, types)``, but ``False`` for a weak proxy (``weakref.proxy(peer)``: a reference to another's
    object, never a model's state of its own; a live one passes ``isinstance`` as its object, a dead one fails it with
    ``ReferenceError``). By type first, as the kept attributes read every module's values.

    Examples:
        >>> t = torch.zeros(1)
        >>> instance_of(t, Tensor), instance_of(weakref.proxy(t), Tensor), isinstance(weakref.proxy(t), Tensor)
        (True, False, True)
    """
    return type(value) not in _PROXIES and isinstance(value, types)


def _users_object(v: Any) -> bool:
    """Whether ``v`` is an object of the user's own class that may hold a model's state (:func:`helper_objects`): one
    with a ``__dict__``, of no class (its bases too: a ``LightningDataModule`` or a ``Dataset`` of the user's, an
    optimizer's subclass) of torch's, Lightning's or this package's (:data:`_FRAMEWORKS`) nor of the standard library's."""
    if type(v) in _PLAIN or type(v) in _PROXIES:  # a weak proxy (`weakref.proxy(peer)`) owns nothing; a dead one
        return False  # fails at any read (ReferenceError). By type first: a module's dozen hook OrderedDicts hold
        # a __dict__ (3.4 against 1.2 ms of keep_attributes on a 6-layer TransformerEncoder, at each audit_mode and no_trace)
    if isinstance(v, (nn.Module, Tensor, type)) or not hasattr(v, "__dict__"):
        return False
    if {c.__module__.split(".")[0] for c in type(v).__mro__[:-1]} & (_FRAMEWORKS | _STDLIB):
        return False
    attributes = vars(v)
    return isinstance(attributes, dict) and _state_like(attributes)


def _finds_tensor(d: dict[Any, Any]) -> bool:
    """Whether a dict holds a tensor (not a parameter; alone or in a tuple or a list, in a dict it holds too), stopping at
    the first."""
    todo, seen = [d], set()
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        for v in x.values():
            if type(v) in _SCALARS or type(v) in _PROXIES:
                continue
            if isinstance(v, _HOLDERS) and _tensors(v):
                return True
            if _is_dict(v):
                todo.append(v)
    return False


def _state_like(attributes: dict[str, Any]) -> bool:
    """Whether an object's attributes are those of a model's state: tensors among them (alone, in a tuple or a list, in a
    dict: ``self.bank["q"]``), or none yet and only numbers, strings, ``None`` and empty lists, tuples and dicts (a store
    that creates its tensors at its first call, ``self.queue = None``, ``self.items = []``); not an object of other data
    and no tensor (a tokenizer's vocabulary of 30,000 words: copied at every audit, 25 ms)."""
    if any(instance_of(v, _HOLDERS) and _tensors(v) or _is_dict(v) and _finds_tensor(v) for v in attributes.values()):
        return True
    return all(type(v) in _SCALARS or (type(v) in (list, tuple, dict, OrderedDict) and not v) for v in attributes.values())


def helper_objects(model: nn.Module) -> list[tuple[str, object]]:
    """The plain objects of the user's own classes that ``model``'s modules hold as attributes, one level down, each
    once (an object several modules hold, a KV cache shared by the layers, under the first name): a datastore of a
    retrieval model, ``self.store.keys``, ``self.store.ptr``, also one that creates its tensors at its first call
    (``self.store.queue = None`` until then) or holds them in a list or a dict (``self.store.items``,
    ``self.store.bank["q"]``); a ``RunningMeanStd`` helper of tensors, ``self.obs_rms.mean``; each with its name
    (``store``). Objects of torch's, Lightning's, this package's and the standard library's classes, and of the user's
    subclasses of the first three (an optimizer, a trainer, a ``LightningDataModule`` or a ``Dataset`` kept on a
    ``LightningModule``: their data are no state of the model, and copying them at every audit would cost their size),
    are left out (:func:`_users_object`).

    Examples:
        >>> class Store:
        ...     def __init__(self):
        ...         self.keys, self.ptr = torch.zeros(4, 2), 0
        >>> Store.__module__ = "my_model"  # a user's class (a doctest's is this package's)
        >>> m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
        >>> m.store = m[0].store = Store()
        >>> m.name = "knn"
        >>> [name for name, _ in helper_objects(m)]
        ['store']
    """
    found: list[tuple[str, object]] = []
    seen: set[int] = set()
    for prefix, m in model.named_modules():
        at = f"{prefix}." if prefix else ""
        for k, v in vars(m).items():
            if id(v) not in seen and _users_object(v):
                seen.add(id(v))
                found.append((f"{at}{k}", v))
    return found


def _tensor_attributes(holder: object) -> list[tuple[str, Tensor]]:
    """``holder``'s attributes that hold a tensor, not a parameter, as ``(name, tensor)`` (a weak proxy passed by: a dead
    one fails at any read)."""
    return [(k, v) for k, v in list(vars(holder).items())
            if instance_of(v, Tensor) and not isinstance(v, nn.Parameter)]


def helper_tensors(model: nn.Module) -> dict[str, tuple[object, str, Tensor]]:
    """The tensors (not parameters) of the plain objects ``model``'s modules hold (:func:`helper_objects`: a datastore,
    ``self.store.keys``; a ``RunningMeanStd`` helper of tensors, ``self.obs_rms.mean``), by name (``store.keys``), each as
    ``(object, attribute, tensor)``: what :func:`held_tensors` saves for a checkpoint and the batch-dependence check
    watches (``sample_independence._kept_places``). NumPy arrays are not tensors: a helper of them is not seen
    (docs/your_model.md#policies-actor-critic-gaussian-and-recurrent).

    Examples:
        >>> class Stats:
        ...     def __init__(self):
        ...         self.mean, self.count = torch.zeros(2), 4
        >>> Stats.__module__ = "my_model"  # a user's class (a doctest's is this package's)
        >>> m = nn.Linear(2, 2)
        >>> m.rms = Stats()
        >>> list(helper_tensors(m))
        ['rms.mean']
    """
    return {f"{name}.{k}": (obj, k, t) for name, obj in helper_objects(model) for k, t in _tensor_attributes(obj)}


def held_tensors(model: nn.Module) -> dict[str, tuple[object, str, Tensor]]:
    """The tensors ``model`` holds outside its ``state_dict``, by name: its modules' plain tensor attributes (a memory
    bank kept as ``self.keys = torch.zeros(K, D)``) and those of the datastore objects they hold (:func:`helper_tensors`,
    ``store.keys``), each as ``(holder, attribute, tensor)``, for a copy of the model to be given them back (the backdoor
    term's frozen reference, resumed from a checkpoint); tensors computed in the autograd graph (``weight_norm``'s
    ``weight``, computed again at every pass) left out.

    Examples:
        >>> m = nn.Linear(2, 2)
        >>> m.keys = torch.zeros(4, 2)
        >>> list(held_tensors(m))
        ['keys']
    """
    held = {f"{name}.{k}" if name else k: (m, k, t) for name, m in model.named_modules() for k, t in _tensor_attributes(m)}
    held.update(helper_tensors(model))
    return {name: place for name, place in held.items() if place[2].grad_fn is None}


def keep_attributes(model: nn.Module, reassigned_buffers: bool = False, values: bool = False,
                    numbers: bool = False, helpers: bool = False, helper_bytes: float | None = None) -> KeptAttributes:
    """Note the tensors that ``model``'s modules keep as plain attributes (not parameters, not buffers), for
    :meth:`KeptAttributes.restore` after passes that may change them.

    A stateful model carries its recurrent state from batch to batch on the module: ``forward`` reads
    ``self.h`` and sets ``self.h = h.detach()``. The audits' forward passes, on the probe and on its
    intervened rows, would leave the state of their own last pass there, and training would go on from it.

    Args:
        model: the model.
        reassigned_buffers: also note the buffers, to set back any that is reassigned (not their values: a
            training pass's in-place updates of BatchNorm statistics stay), as the repair terms' passes need.
        values: also copy the buffers' values and note the attributes holding numbers (``int``, ``float``), strings,
            bools or ``None``, for
            :meth:`KeptAttributes.restore` to put back in-place updates too (a state updated in place,
            ``self.h.copy_(h)``; a step counter; ``spectral_norm``'s ``u`` and ``v``): the state as it was, for passes
            that must leave none (one copy of every buffer), but for the buffers of normalisation layers and fake-quant
            modules, whose updates by a training pass stay (BatchNorm's running statistics, an observer's range).
        numbers: note the attributes holding numbers, strings, bools or ``None`` only, numpy arrays, sets and dicts of
            no tensors too (a copy of each array and set, in a dict too, up to :data:`KEPT_ARRAY_BYTES` bytes and
            :data:`KEPT_SET_ITEMS` items: :func:`_in_place`; :data:`KEPT_TOTAL_BYTES` and :data:`KEPT_TOTAL_SET_ITEMS`
            in all) and frozensets (reassigned, ``self.tags = self.tags | {k}``), and remove those the passes create (``values`` does all this too),
            for a caller that restores the buffers itself (the callback's ``no_trace``: a call counter,
            ``self.calls += 1``, a mode the forward sets, ``self.mode = "long"``, without a second copy of every
            buffer); one the passes set to a tensor or a list is put back as those are (:meth:`KeptAttributes.restore`).
        helpers: also note the attributes of the plain objects the modules hold that hold tensors
            (:func:`helper_objects`: a retrieval model's datastore, ``self.store.keys[rows] = z``, ``self.store.ptr += n``),
            as a module's own: its tensors copied, put back where updated in place or reassigned, and its numbers with
            ``numbers`` or ``values`` (the callback's ``no_trace``, the estimators' ``audit_mode``, the repair module's
            state watch and terms' passes).
        helper_bytes: the most bytes of the helper objects' tensors copied in all (``None``: :data:`KEPT_HELPER_BYTES`)
            before an object past it is copied only until a keep has seen it unwritten;
            the repair module's state watch and terms' passes give ``math.inf``: a bank past it that the terms' passes
            (training mode) write is put back at every step, as a buffer is, where the audits' cap would leave their rows.

    Examples:
        >>> m = nn.Linear(2, 2)
        >>> m.h, m.c = torch.zeros(1, 2), None
        >>> kept = keep_attributes(m)
        >>> m.h, m.c, m.new = torch.ones(3, 2), torch.ones(1), torch.ones(1)
        >>> kept.restore()
        >>> m.h.shape, m.c, hasattr(m, "new")
        (torch.Size([1, 2]), None, False)
    """
    kept = KeptAttributes(values=[] if values else None, numbers=values or numbers, passes=PASSES[0])
    left = [KEPT_TOTAL_BYTES, KEPT_TOTAL_SET_ITEMS]  # what _copies may still copy
    seen: set[int] = set()  # the dicts kept: each once, also one shared by two modules or held in another
    helper_left = KEPT_HELPER_BYTES if helper_bytes is None else helper_bytes  # what the helper objects' copies may still take
    for name_of, m in [*(("", m) for m in model.modules()), *(helper_objects(model) if helpers else ())]:
        before = dict(vars(m))
        odd = [(name, v) for name, v in before.items()  # few: scanned once, as measured; nn.Module's own set of
               if type(v) not in _PLAIN and type(v) not in _PROXIES and not (name in _MODULE_SETS and type(v) is set)]  # buffer names left out here
        held = [(name, v) for name, v in odd if isinstance(v, _HOLDERS)]
        kept.entries.append((m, before, _lists(dict(held))))
        if kept.numbers:
            kept.arrays += _copies((v for _, v in odd), left)
        dicts = [x for name, v in before.items() if _is_dict(v) and name not in _MODULE_DICTS for x in _nested_dicts(v, seen)]
        kept.dicts += [(d, dict(d), _lists(d)) for d in dicts]
        if kept.numbers:  # an array or a set a dict holds, `self.stats["mean"] += x`
            kept.arrays += [c for d in dicts for c in _copies(d.values(), left)]
        tensors = [t for t in [*(t for _, v in held for t in _tensors(v)), *(t for d in dicts for t in _own_tensors(d))]
                   if _copyable(t)]
        size = sum(t.numel() * t.element_size() for t in tensors) if name_of else 0  # a helper object's: within budget
        if size > helper_left:  # past the budget: copied until seen unwritten (_READ_ONLY), its versions noted
            copied = m not in _READ_ONLY
            kept.past_budget.append((name_of, m, size, copied, range(len(kept.copies), len(kept.copies) + len(tensors))))
        else:
            helper_left -= size
            copied = True
        kept.copies += [(t, t._version, _address(t), t.detach().clone() if copied else None) for t in tensors]
        if not isinstance(m, nn.Module):  # a helper object: no buffers
            continue
        if reassigned_buffers:
            kept.buffers += [(m, name, b, -1 if b is None or b.is_inference() else b._version) for name, b in m._buffers.items()]
        if kept.values is not None and not _trained_statistics(m):
            kept.values += [(b, b._version, b.detach().clone()) for b in m._buffers.values()
                            if isinstance(b, Tensor) and _copyable(b)]  # normalisation statistics, observers: as trained
    return kept
