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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from keyword import iskeyword
from typing import Any

import torch.fx as fx
from torch import Tensor, nn

from lightning_causal.causal.engine.forward import kept_inputs, restore_inputs
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


def _trace(model: nn.Module, layer: str, concrete: Mapping[str, Any] | None = None,
           binding: _Binding | None = None) -> tuple[fx.Graph, nn.Module]:
    """Trace a shallow copy of ``model`` (tensor constants the tracer stores land on the copy; ``binding``: the call's
    flat signature where it fills ``*args``/``**kwargs``)."""
    root = copy.copy(model) if binding is None else binding.traced(copy.copy(model))
    caches = dict_items(model)  # a dict the forward writes into is shared with the copy: no Proxy left in it
    try:
        return _LeafTracer(layer).trace(root, concrete_args=dict(concrete) if concrete else None), root
    except Exception as err:  # noqa: BLE001 - any tracing failure means: use another path
        raise SplitRefused(f"torch.fx cannot trace the model ({type(err).__name__}: {str(err)[:120]})") from err
    finally:
        put_back_items(caches)


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


def _build_suffix(root: nn.Module, cut: _Cut, consts: Mapping[fx.Node, Any] | None = None) -> fx.GraphModule:
    """``(value, *live) -> output``: the nodes after the cut, constants copied as needed
    (``consts``: traced placeholders specialised to constants)."""
    new = fx.Graph()
    env: dict[fx.Node, Any] = dict(consts or {})
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


class _Binding:
    """How a call ``model(*args, **kwargs)`` maps to the traced graph's placeholders: tensors become
    the recorder's inputs, other values are specialised (``concrete_args``; a tuple, list or mapping of them is
    refused: the tracer flattens it into placeholders of its own and the output into a list).

    A forward with ``*args``/``**kwargs`` that receive values is traced through a flat signature of as
    many explicit parameters as the call has (:attr:`flat`): the ``i``-th value of ``*args`` as
    ``_<args>_<i>``, a ``**kwargs`` value under its key; :meth:`values` refuses a later call of another
    structure (another count of variadic values, other keys) rather than bind it to the wrong placeholders."""

    def __init__(self, model: nn.Module, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        self.signature = inspect.signature(model.forward)
        self.forward = type(model).forward
        bound = self._bind(args, kwargs)
        #: the traced parameters: (name, the forward parameter, the key in its ``*args``/``**kwargs`` or ``None``)
        self.flat: list[tuple[str, inspect.Parameter, int | str | None]] = []
        for p in self.signature.parameters.values():
            value = bound.arguments.get(p.name)
            if p.kind == p.VAR_POSITIONAL:
                self.flat.extend((f"_{p.name}_{i}", p, i) for i in range(len(value or ())))
            elif p.kind == p.VAR_KEYWORD:
                self.flat.extend((key, p, key) for key in (value or {}))
            else:
                self.flat.append((p.name, p, None))
        self.variadic = any(key is not None for *_, key in self.flat)
        self.structure = self._structure(bound)
        names = [name for name, *_ in self.flat]
        if self.variadic and (len(set(names)) < len(names) or not all(n.isidentifier() and not iskeyword(n) and n not in ("self", "__forward") for n in names)):
            raise SplitRefused(f"variadic forward arguments whose names cannot be parameters: {names}")
        self.params = [p for _, p, _ in self.flat] if self.variadic else list(self.signature.parameters.values())
        self.tensors: list[str] = []
        self.concrete: dict[str, Any] = {}
        for name, p, key in self.flat:
            value = bound.arguments.get(p.name) if key is None else bound.arguments[p.name][key]
            if isinstance(value, Tensor):
                self.tensors.append(name)
            elif _holds_tensor(value):
                raise SplitRefused(f"forward argument {name!r} holds tensors inside a container")
            elif isinstance(value, (tuple, list, Mapping)):  # concrete_args flattens it: placeholders of its own
                raise SplitRefused(f"forward argument {name!r} is a {type(value).__name__}, which torch.fx specialises "
                                   "into placeholders of its own and a flattened output")
            else:
                self.concrete[name] = value

    def _bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> inspect.BoundArguments:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as err:
            raise SplitRefused(f"the call does not match forward's signature ({err})") from err
        bound.apply_defaults()
        return bound

    def _structure(self, bound: inspect.BoundArguments) -> tuple[Any, ...]:
        """The count of ``*args`` values and the keys of ``**kwargs``: what the traced placeholders stand for."""
        return tuple(len(bound.arguments.get(p.name, ())) if p.kind == p.VAR_POSITIONAL else tuple(bound.arguments.get(p.name, {}))
                     for p in self.signature.parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def values(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Tensor]:
        bound = self._bind(args, kwargs)
        if self._structure(bound) != self.structure:
            raise SplitRefused(f"the call's variadic arguments {self._structure(bound)} differ from the traced call's "
                               f"{self.structure}")
        return [bound.arguments[p.name] if key is None else bound.arguments[p.name][key]
                for name, p, key in self.flat if name in self.tensors]

    def traced(self, root: nn.Module) -> nn.Module:
        """``root`` (a shallow copy of the model) itself, or with a variadic call its class's subclass whose
        ``forward`` takes the flat parameters and calls the model's ``forward`` with them as the call did."""
        if not self.variadic:
            return root
        positional = [name for name, p, _ in self.flat if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
        keyword = [name for name, p, _ in self.flat if p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD)]
        names = [name for name, *_ in self.flat]
        source = (f"def forward(self, {', '.join(names)}):\n"
                  f"    return __forward(self, {', '.join([*positional, *(f'{k}={k}' for k in keyword)])})\n")
        space: dict[str, Any] = {"__forward": self.forward}
        exec(compile(source, f"<flat forward of {type(root).__qualname__}>", "exec"), space)  # noqa: S102 - names checked
        cls = type(root)
        try:
            flat = type(cls)(cls.__name__, (cls,), {"forward": space["forward"], "__module__": cls.__module__})
            # on the copy alone: a wrapper forwarding attribute writes to the module it wraps (Lightning Fabric's
            # _FabricModule) would set the class of the user's network
            object.__setattr__(root, "__class__", flat)
        except Exception as err:  # noqa: BLE001 - a class that cannot be subclassed this way
            raise SplitRefused(f"the variadic forward cannot be given a flat signature ({type(err).__name__}: {err})") from err
        return root

    def holders(self, graph: fx.Graph) -> list[fx.Node]:
        """The traced graph's placeholders, one per parameter of :attr:`params` (else :class:`SplitRefused`)."""
        holders = [n for n in graph.nodes if n.op == "placeholder"]
        if len(holders) != len(self.params):
            raise SplitRefused("the traced graph's placeholders do not match forward's parameters")
        return holders

    def placeholder_env(self, graph: fx.Graph, new: fx.Graph) -> tuple[dict[fx.Node, Any], set[fx.Node]]:
        """Map the traced placeholders to the recorder's inputs (tensors) or constants."""
        holders = self.holders(graph)
        env: dict[fx.Node, Any] = {}
        inputs = set()
        flat = self.flat if self.variadic else [(p.name, p, None) for p in self.params]
        for node, (name, p, key) in zip(holders, flat):
            if name in self.tensors:
                env[node] = new.placeholder(f"in_{len(inputs)}")
                inputs.add(node)
            elif key is None and p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):  # an empty *args/**kwargs
                env[node] = () if p.kind == p.VAR_POSITIONAL else {}
            else:
                env[node] = self.concrete[name]
        return env, inputs


def flat_call(model: nn.Module, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any] | None]:
    """What to trace for a call ``model(*args, **kwargs)`` whose ``*args``/``**kwargs`` receive values: a shallow copy
    of ``model`` with the call's flat signature (:class:`_Binding`) and its specialised non-tensor values; ``model``
    and ``None`` for any other call (traced as before: every parameter a placeholder).

    Raises:
        SplitRefused: the call does not bind, or holds tensors inside containers, or names that cannot be parameters.
    """
    if not _fills_variadic(model, args, kwargs):
        return model, None
    binding = _Binding(model, args, kwargs)
    return binding.traced(copy.copy(model)), binding.concrete


def _fills_variadic(model: nn.Module, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """Whether the call ``model(*args, **kwargs)`` gives its forward's ``*args`` or ``**kwargs`` values (``False``
    also where it does not bind: the model's own call says why)."""
    signature = inspect.signature(model.forward)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return False
    return any(bound.arguments.get(p.name) for p in signature.parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    if isinstance(value, Mapping):
        return any(_holds_tensor(v) for v in value.values())
    return False


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
    graph, root = _trace(model, layer, binding.concrete, binding)
    new = fx.Graph()
    env, inputs = binding.placeholder_env(graph, new)
    cut = _analyse(graph, layer, inputs)
    try:
        recorder = _build_recorder(new, root, cut, env)
        suffix = _build_suffix(root, cut, {n: v for n, v in env.items() if n.op == "placeholder" and not isinstance(v, fx.Node)})
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
        call: the ``(args, kwargs)`` of the model's calls, which a forward with ``*args``/``**kwargs`` is traced
            through (:func:`flat_call`; a call filling neither traces as without it).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> suffix_module(model, "0")(torch.zeros(5, 4)).shape
        torch.Size([5, 2])
    """
    try:
        binding = _Binding(model, *call) if call is not None and _fills_variadic(model, *call) else None
        if binding is not None:
            graph, root = _trace(model, layer, binding.concrete, binding)
            holders = dict(zip((name for name, *_ in binding.flat), binding.holders(graph)))
            tensors = {holders[name] for name in binding.tensors}
            consts = {holders[name]: value for name, value in binding.concrete.items()}
        else:
            graph, root = _trace(model, layer)
            tensors, consts = {n for n in graph.nodes if n.op == "placeholder"}, {}
        cut = _analyse(graph, layer, tensors)
    except SplitRefused:
        return None
    if cut.live or cut.later_calls:
        return None
    return _build_suffix(root, cut, consts)
