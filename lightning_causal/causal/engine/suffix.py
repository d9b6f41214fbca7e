"""Split a model at a layer with ``torch.fx``: the prefix runs once, the suffix on intervened rows.

:func:`fx_split` traces the model with the layer as a leaf and cuts the graph at the layer's first
call. The *suffix* graph computes the model's output from the layer's output and every other
value that is live at the cut: skip tensors that cross it (a residual block's input, a projection
shortcut computed from it), forward arguments used after it (attention masks) and anything
derived from them. The *recorder* graph is the whole model returning, besides its output, the
layer's output and those live values (each copied where it stands at the cut, so that in-place
operations of the suffix do not alter it). Later calls of the layer stay in the suffix.
:class:`~lightning_causal.causal.engine.prefix_cache.PrefixCache` runs the recorder once and the
suffix per chunk of rows; it classifies the live values (per-sample, gathered by row, or shared)
and checks the split against the model before using it.

:func:`suffix_module` is the original, stricter entry point: a module mapping the layer's output
alone to the model's output, ``None`` when anything else crosses the cut.

Examples:
    >>> from torch import nn
    >>> import torch
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> tail = suffix_module(net, "1")
    >>> torch.equal(tail(net[1](net[0](torch.ones(4, 2)))), net(torch.ones(4, 2)))
    True
"""

from __future__ import annotations

import copy
import inspect
import reprlib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from keyword import iskeyword
from typing import Any

import torch.fx as fx
from torch import Tensor, nn

from lightning_causal.causal.engine.forward import kept_inputs, restore_inputs
from lightning_causal.causal.engine.forward_args import tensor_leaves
from lightning_causal.causal.engine.kept_attributes import dict_items, put_back_items
from lightning_causal.causal.engine.live_values import snapshot

__all__ = ["FxSplit", "fx_split", "suffix_module", "SplitRefused"]


class SplitRefused(Exception):
    """The model cannot be split at the layer this way (the message says why)."""


class _LeafTracer(fx.Tracer):
    def __init__(self, leaf: str) -> None:
        super().__init__()
        self._leaf = leaf

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname == self._leaf or super().is_leaf_module(m, qualname)


def _trace(model: nn.Module, layer: str, binding: _Binding | None = None) -> tuple[fx.Graph, nn.Module]:
    """Trace a shallow copy of ``model`` (tensor constants the tracer stores land on the copy), through ``binding``'s
    flat forward where a call is given (:meth:`_Binding.traced`), else with every parameter a placeholder."""
    if binding is None:
        _class_forward(model)
        root = copy.copy(model)
    else:
        root = binding.traced(model)
    caches = dict_items(model)  # a dict, buffer or attribute the forward writes is shared with the copy: no Proxy left
    try:
        return _LeafTracer(layer).trace(root), root
    except Exception as err:  # noqa: BLE001 - any tracing failure means: use another path
        raise SplitRefused(f"torch.fx cannot trace the model ({type(err).__name__}: {str(err)[:120]})") from err
    finally:
        put_back_items(caches)


def _class_forward(model: nn.Module) -> Any:
    """The ``forward`` torch.fx traces, its class's (``Tracer.trace`` reads ``type(root).forward``): a forward replaced
    on the instance (``model.forward = fn``) is not it, refused (:class:`SplitRefused`) rather than traced unseen."""
    if "forward" in vars(model):
        raise SplitRefused("the model's forward is replaced on the instance, and torch.fx traces its class's")
    return type(model).forward


@dataclass
class _Cut:
    nodes: list[fx.Node]
    site: fx.Node
    after: set[fx.Node]
    live: list[fx.Node]
    later_calls: int


def _closure(nodes: list[fx.Node], seeds: set[fx.Node]) -> set[fx.Node]:
    out = set(seeds)
    for n in nodes:
        if n not in out and any(a in out for a in n.all_input_nodes):
            out.add(n)
    return out


def _analyse(graph: fx.Graph, layer: str, inputs: set[fx.Node]) -> _Cut:
    """The cut at the first call of ``layer``: nodes after it and the values live across it."""
    nodes = list(graph.nodes)
    sites = [n for n in nodes if n.op == "call_module" and n.target == layer]
    if not sites:
        raise SplitRefused(f"the traced graph never calls {layer!r}")
    after = _closure(nodes, set(sites))
    output = next(n for n in nodes if n.op == "output")
    if output not in after:
        raise SplitRefused(f"the model's output does not depend on {layer!r}")
    from_input = _closure(nodes, inputs)
    site = sites[0]
    live = [
        n for n in nodes
        if n not in after and n in from_input and any(u in after and u is not site for u in n.users)
    ]
    return _Cut(nodes, site, after, live, len(sites) - 1)


def _build_suffix(root: nn.Module, cut: _Cut) -> fx.GraphModule:
    """``(value, *live) -> output``: the nodes after the cut, constants copied as needed."""
    new = fx.Graph()
    env: dict[fx.Node, Any] = {}
    env[cut.site] = new.placeholder("value")
    env.update({n: new.placeholder(f"live_{i}") for i, n in enumerate(cut.live)})

    def get(a: fx.Node) -> Any:
        if a not in env:  # input-independent values (parameters, constants) used after the cut
            env[a] = new.node_copy(a, get)
        return env[a]

    for n in cut.nodes:
        if n in cut.after and n is not cut.site and n.op != "output":
            env[n] = new.node_copy(n, get)
        elif n.op == "output":
            new.output(fx.node.map_arg(n.args[0], get))
    new.lint()
    return fx.GraphModule(root, new)


def _build_recorder(new: fx.Graph, root: nn.Module, cut: _Cut, env: dict[fx.Node, Any]) -> fx.GraphModule:
    """The whole model returning ``(output, layer output, *live values)``, each value copied where
    it stands at the cut (after its definition and after the layer's call). ``new`` holds the
    recorder's placeholders, ``env`` maps the traced placeholders to them (or to constants)."""
    position = {n: i for i, n in enumerate(cut.nodes)}
    watch = [cut.site, *cut.live]
    snap_at: dict[fx.Node, list[fx.Node]] = {}
    for n in watch:
        snap_at.setdefault(cut.nodes[max(position[n], position[cut.site])], []).append(n)
    snaps: dict[fx.Node, fx.Node] = {}
    for n in cut.nodes:
        if n.op == "placeholder":
            continue
        if n.op == "output":
            out = fx.node.map_arg(n.args[0], lambda a: env[a])
            new.output((out, *(snaps[w] for w in watch)))
            break
        env[n] = new.node_copy(n, lambda a: env[a])
        for w in snap_at.get(n, []):
            snaps[w] = new.call_function(snapshot, (env[w],))
    new.lint()
    return fx.GraphModule(root, new)


_SCALARS = (bool, int, float, complex, str, bytes, type(None))


def _of_scalars(value: Any) -> bool:
    """Whether ``value`` is a tuple, list or mapping of Python scalars alone, at any depth (``dims=(0,)``, ``sizes=[1,
    2]``, ``{"mode": "mean"}``): a value specialised as a number is."""
    if isinstance(value, (tuple, list)):
        return all(isinstance(v, _SCALARS) or _of_scalars(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(v, _SCALARS) or _of_scalars(v) for v in value.values())
    return False


def _same_value(a: Any, b: Any) -> bool:
    """Whether a value specialised into a traced graph (``b``) stands for ``a``: the same object, or Python scalars and
    containers of them of the same types and values, at any depth (``1`` is not ``1.0``, a list not a tuple)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(_same_value, a, b))
    if isinstance(a, Mapping):
        return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)
    return isinstance(a, _SCALARS) and bool(a == b or (a != a and b != b))  # noqa: PLR0124 - NaN stands for NaN


def _described(value: Any) -> str:
    return reprlib.repr(value) if isinstance(value, _SCALARS) or _of_scalars(value) else f"a {type(value).__name__}"


#: one value of a call bound to ``forward``: (its name in the flat forward, the forward parameter, its key in that
#: parameter's ``*args``/``**kwargs`` or ``None``, the value)
_Entry = tuple[str, inspect.Parameter, "int | str | None", Any]


class _Binding:
    """How a call ``model(*args, **kwargs)`` maps to the traced graph: its placeholders are the call's tensors (and
    values holding tensors inside a container, which :func:`fx_split` refuses), in ``forward``'s order; every other
    value is specialised, a tuple, list or mapping of Python scalars too (``dims=(0,)``; one holding other objects is
    refused).

    Where that is not one placeholder per parameter of ``forward`` (a value specialised, or ``*args``/``**kwargs``),
    the model is traced through a flat forward (:meth:`traced`) taking the placeholders alone, the ``i``-th value of
    ``*args`` as ``_<args>_<i>``, a ``**kwargs`` value under its key. :meth:`values` refuses a later call of another
    structure (another count of ``*args`` values, other ``**kwargs`` keys, or the same keys in another order: a forward
    may read its ``**kwargs`` in order, ``torch.cat(list(kw.values()), -1)``) rather than bind it to the wrong
    placeholders, and one whose specialised values differ from the traced call's, or whose tensors stand elsewhere (a
    mask given where the trace specialised ``None``), rather than compute the traced call's values in silence.

    The forward is the class's, which torch.fx traces (:func:`_class_forward`): one replaced on the instance is refused.
    """

    def __init__(self, model: nn.Module, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        self.forward = _class_forward(model)
        self.signature = inspect.signature(self.forward.__get__(model, type(model)))
        entries = self._entries(args, kwargs)
        self.structure = self._structure(entries)
        #: the placeholders' names, in forward's order, and those of them that are tensors
        self.inputs = [name for name, *_, value in entries if bool(tensor_leaves(value))]
        self.tensors = [name for name, *_, value in entries if isinstance(value, Tensor)]
        #: the values specialised as constants
        try:  # a copy, which a later call's values are compared with (`values`); one that cannot be copied is refused
            self.constants = {name: copy.deepcopy(value) if _of_scalars(value) else value
                              for name, *_, value in entries if not tensor_leaves(value)}
        except Exception as err:  # a read-only mapping default, `cfg=types.MappingProxyType({...})`: not picklable
            raise SplitRefused(f"a forward argument cannot be copied to be specialised ({type(err).__name__}: {err})") from err
        for name, value in self.constants.items():
            if isinstance(value, (tuple, list, Mapping)) and not _of_scalars(value):
                raise SplitRefused(f"forward argument {name!r} is a {type(value).__name__} holding values other than "
                                   "tensors and Python scalars, which cannot be specialised")
        variadic = any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in self.signature.parameters.values())
        self.flat = variadic or bool(self.constants)
        # every value's name, specialised or not, is one parameter or constant of the flat forward: a `*a` value
        # `_a_0` beside a keyword `_a_0`, or a positional-only name again as a `**kw` key, would share one
        if self.flat and len(set(self.structure)) < len(self.structure):
            raise SplitRefused(f"forward arguments sharing a name, which a flat forward cannot take: {list(self.structure)}")
        if self.flat and not all(n.isidentifier() and not iskeyword(n) and n not in ("self", "__forward", "__constants")
                                 for n in self.inputs):
            raise SplitRefused(f"forward arguments whose names cannot be parameters: {self.inputs}")
        self._kinds = [(name, p, key) for name, p, key, _ in entries]

    def _entries(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[_Entry]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as err:
            raise SplitRefused(f"the call does not match forward's signature ({err})") from err
        bound.apply_defaults()
        entries: list[_Entry] = []
        for p in self.signature.parameters.values():
            value = bound.arguments[p.name]
            if p.kind == p.VAR_POSITIONAL:
                entries.extend((f"_{p.name}_{i}", p, i, v) for i, v in enumerate(value))
            elif p.kind == p.VAR_KEYWORD:
                entries.extend((key, p, key, v) for key, v in value.items())
            else:
                entries.append((p.name, p, None, value))
        return entries

    @staticmethod
    def _structure(entries: list[_Entry]) -> tuple[Any, ...]:
        """The names of the values, the ``*args``/``**kwargs`` keys in the call's order: what the placeholders stand for."""
        return tuple(name for name, *_ in entries)

    def values(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Tensor]:
        """The tensors of a call ``model(*args, **kwargs)`` shaped like the traced one, in the placeholders' order
        (:class:`SplitRefused` for a call of another structure or other specialised values: :class:`_Binding`)."""
        entries = self._entries(args, kwargs)
        if self._structure(entries) != self.structure:
            raise SplitRefused(f"the call's variadic arguments {self._structure(entries)} differ from the traced call's "
                               f"{self.structure}")
        for name, *_, value in entries:  # the graph computes the traced call's specialised values, not the call's
            if name in self.constants:
                same, was = _same_value(value, self.constants[name]), _described(self.constants[name])
            elif name in self.tensors:
                same, was = isinstance(value, Tensor), "a tensor"
            else:
                same, was = bool(tensor_leaves(value)) and not isinstance(value, Tensor), "a container of tensors"
            if not same:
                raise SplitRefused(f"forward argument {name!r} is {_described(value)} where the traced call's was {was} "
                                   "(a value other than a tensor is specialised into the graph): trace the split for "
                                   "this call")
        return [value for name, *_, value in entries if name in self.tensors]

    def traced(self, model: nn.Module) -> nn.Module:
        """A shallow copy of ``model``, with a flat call (:attr:`flat`) given a subclass of its class whose ``forward``
        takes the placeholders alone and calls the class's ``forward`` as the call did, the specialised values as
        constants (module names stay)."""
        root = copy.copy(model)
        if not self.flat:
            return root
        constants = list(self.constants.values())
        at = {name: i for i, name in enumerate(self.constants)}
        positional, keyword = [], []
        for name, p, key in self._kinds:
            expr = name if name in self.inputs else f"__constants[{at[name]}]"
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL):
                positional.append(expr)
            else:
                keyword.append(f"{name if key is None else key!r}: {expr}")
        source = (f"def make(__forward, __constants):\n"
                  f"    def forward(self, {', '.join(self.inputs)}):\n"
                  f"        return __forward(self, {''.join(f'{e}, ' for e in positional)}**{{{', '.join(keyword)}}})\n"
                  f"    return forward\n")
        space: dict[str, Any] = {}
        exec(compile(source, f"<flat forward of {type(root).__qualname__}>", "exec"), space)  # noqa: S102 - names checked
        made = space["make"](self.forward, constants)
        # torch.fx patches the math functions a traced forward's module imports by name (`from math import sqrt`) in
        # that forward's globals: the flat forward's are the class forward's, its own names in its closure
        forward = types.FunctionType(made.__code__, getattr(self.forward, "__globals__", space), "forward", None,
                                     made.__closure__)
        cls = type(root)
        try:
            flat = type(cls)(cls.__name__, (cls,), {"forward": forward, "__module__": cls.__module__})
            # on the copy alone: a wrapper forwarding attribute writes to the module it wraps (Lightning Fabric's
            # _FabricModule) would set the class of the user's network
            object.__setattr__(root, "__class__", flat)
        except Exception as err:  # noqa: BLE001 - a class that cannot be subclassed this way
            raise SplitRefused(f"the forward cannot be given a flat signature ({type(err).__name__}: {err})") from err
        return root

    def placeholder_env(self, graph: fx.Graph, new: fx.Graph) -> tuple[dict[fx.Node, Any], set[fx.Node]]:
        """Map the traced placeholders to the recorder's inputs (else :class:`SplitRefused`)."""
        holders = [n for n in graph.nodes if n.op == "placeholder"]
        if len(holders) != len(self.inputs):
            raise SplitRefused("the traced graph's placeholders do not match forward's parameters")
        env = {node: new.placeholder(f"in_{i}") for i, node in enumerate(holders)}
        return env, set(holders)


def flat_call(model: nn.Module, args: Sequence[Any], kwargs: Mapping[str, Any]) -> nn.Module:
    """What torch.fx traces for a call ``model(*args, **kwargs)``: a shallow copy of ``model``, through a flat
    forward where the call specialises a value or fills ``*args``/``**kwargs`` (:class:`_Binding`); its placeholders
    are the call's tensors (and values holding tensors).

    Raises:
        SplitRefused: the call does not bind, or holds a container of other values than tensors and Python scalars, or
            names that cannot be parameters, or the model's forward is replaced on the instance.
    """
    return _Binding(model, args, kwargs).traced(model)


class _InputsKept:
    """The recorder graph called with its input tensors restored afterwards: a model that modifies
    its inputs in place (``x.sub_(mean)``) leaves the probe as it was, as a call through
    :class:`~lightning_causal.causal.engine.forward.Forward` does."""

    def __init__(self, graph: fx.GraphModule) -> None:
        self.graph = graph

    def __call__(self, *args: Any) -> Any:
        kept = kept_inputs(list(args))
        try:
            return self.graph(*args)
        finally:
            restore_inputs(kept)


@dataclass
class FxSplit:
    """A model split at a layer by :func:`fx_split`.

    Attributes:
        recorder: ``recorder(*tensor_args) -> (output, layer output, *live values)`` (the input
            tensors left as they were).
        suffix: ``suffix(value, *live values) -> output``.
        binding: turns ``(args, kwargs)`` of a model call into ``tensor_args``.
        live_names: the graph names of the live values (for messages).
        later_calls: how many more times the suffix calls the layer's module.
    """

    recorder: _InputsKept
    suffix: fx.GraphModule
    binding: _Binding
    live_names: list[str]
    later_calls: int


def fx_split(model: nn.Module, layer: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> FxSplit:
    """Split ``model`` at the first call of ``layer`` for calls shaped like ``model(*args, **kwargs)``.

    Raises:
        SplitRefused: the model does not trace, or never calls ``layer``, or its output does not
            depend on ``layer``.
    """
    binding = _Binding(model, args, kwargs)
    nested = [name for name in binding.inputs if name not in binding.tensors]
    if nested:
        raise SplitRefused(f"forward argument {nested[0]!r} holds tensors inside a container")
    graph, root = _trace(model, layer, binding)
    new = fx.Graph()
    env, inputs = binding.placeholder_env(graph, new)
    cut = _analyse(graph, layer, inputs)
    try:
        recorder = _build_recorder(new, root, cut, env)
        suffix = _build_suffix(root, cut)
    except Exception as err:  # noqa: BLE001 - code generation of exotic constants
        raise SplitRefused(f"the split graph cannot be built ({type(err).__name__}: {str(err)[:120]})") from err
    return FxSplit(_InputsKept(recorder), suffix, binding, [n.name for n in cut.live], cut.later_calls)


def suffix_module(model: nn.Module, layer: str, call: tuple[Sequence[Any], Mapping[str, Any]] | None = None) -> nn.Module | None:
    """A module mapping the output of ``layer`` to the model's output, or ``None`` if impossible.

    ``None`` when the model does not trace, ``layer`` is called more than once, or any other value
    computed from the inputs is used after ``layer`` (a skip connection crossing it). For those
    models, :func:`~lightning_causal.causal.engine.prefix_cache.cache_prefix` caches every value
    live at the cut instead.

    Args:
        model: the model (``torch.fx``-traceable for a result).
        layer: the module name where the suffix starts.
        call: the ``(args, kwargs)`` of the model's calls, which the model is traced through (:func:`flat_call`): its
            values other than tensors (numbers, ``None``, tuples of numbers, a ``*args``/``**kwargs`` structure) are
            written into the suffix as constants, so the suffix holds for calls with those values only.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> suffix_module(model, "0")(torch.zeros(5, 4)).shape
        torch.Size([5, 2])
    """
    try:
        graph, root = _trace(model, layer, _Binding(model, *call) if call is not None else None)
        cut = _analyse(graph, layer, {n for n in graph.nodes if n.op == "placeholder"})
    except SplitRefused:
        return None
    if cut.live or cut.later_calls:
        return None
    return _build_suffix(root, cut)
