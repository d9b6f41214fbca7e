"""What every step of a causal graph shares: the clean pass over the probe (activations of the
chosen layers, explained class, clean target output), the intervention values, and runs of the
model from a layer with row-specific hooks.

A run "from layer ``L``" evaluates the model on rows whose activation of ``L`` is given: only the
suffix after ``L`` runs where the model splits there (the ``torch.fx`` suffix,
:func:`~lightning_causal.causal.engine.suffix.suffix_module`; else, for enough rows, the prefix
cache, :func:`~lightning_causal.causal.engine.prefix_cache.prefix_cache`: skip tensors that cross
``L`` cached, or a module-hook split for models that do not trace, e.g. Hugging Face), else a
full forward pass with a hook that replaces ``L``'s output. All give the same numbers; hooks on
later modules fire in all.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor, nn

from lightning_causal.causal.engine.ablation import (
    padded_steps,
    position_mean,
    replace_units_,
)
from lightning_causal.causal.engine.batching import rows_per_pass
from lightning_causal.causal.engine.folded_rows import check_site_units_named
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.intervention_hooks import RepeatedCallsWarning
from lightning_causal.causal.engine.interventions import (
    capture,
    module_output,
    replace_output,
    resolve_module,
)
from lightning_causal.causal.engine.kept_attributes import dict_items, put_back_items
from lightning_causal.causal.engine.linear_update import LinearReaders
from lightning_causal.causal.engine.live_values import close
from lightning_causal.causal.engine.padded_reads import explained_target
from lightning_causal.causal.engine.prefix_cache import (
    PrefixCache,
    check_samples_independent,
    prefix_cache,
)
from lightning_causal.causal.engine.state import gather_target, output_fix
from lightning_causal.causal.engine.suffix import (
    SplitRefused,
    _Binding,
    _class_forward,
    _of_scalars,
    _same_value,
    flat_call,
    suffix_module,
)
from lightning_causal.causal.engine.unit_sites import check_samples_first, named_unit_kind
from lightning_causal.causal.engine.units import Layout, from_units, resolve_layout, to_units
from lightning_causal.causal.structure.layer_activations import (
    activations_alone,
    skipped_modules_error,
)

__all__ = ["FxTraces", "GraphContext", "UnitEdit", "ValueSpec", "bypassed", "check_value_spec", "hooked", "layer_values", "unit_layouts"]

#: Rows per probe sample from which runs from a layer that ``torch.fx`` cannot split plainly (a skip
#: tensor crosses it, or the model does not trace) use the prefix cache: its probe run and checks
#: cost about a forward pass of the probe (on bench_graph's BERT, a graph over 4 heads per layer
#: was 1.10x slower with it than with full passes).
CACHE_MIN_ROWS = 8

#: Beside a plain ``torch.fx`` suffix, the prefix cache is built for the convolutions the linear update answers only
#: where they spare at least this many multiply-adds per row (:meth:`~lightning_causal.causal.engine.linear_update.\
#: LinearReaders.conv_work_spared`): its probe run and checks cost more than the update saves on small CNNs
#: (decided on ``benchmarks/bench_graph.py --small --set dev``, graphs with the cache against without: 32 channels of
#: 8x8, 571,392 spared a row, 1.18x; 64 channels, 2,322,432 spared, 0.87x; checked on ``--set test``).
CONV_CACHE_MIN_WORK = 1_000_000

#: How an intervened or ablated unit is set: ``"zero"``, ``"mean"`` (its mean over the probe,
#: per element: mean ablation) or a number.
ValueSpec = str | float

#: Per-sample changes smaller than this fraction of ``E|f_t(x)|`` (outputs) or of the layer's
#: largest activation (hidden units) are float round-off and count as 0 (float32 and narrower).
ROUND_OFF = 1e-5
#: The same for float64 models, which compute to about 1e-16: ``ROUND_OFF`` would zero real path
#: effects there (a weak path's per-sample effect of 1e-6 of the output), not round-off.
ROUND_OFF_FLOAT64 = 1e-11


def round_off(dtype: torch.dtype) -> float:
    """The relative round-off of a computation in ``dtype``: :data:`ROUND_OFF_FLOAT64` for float64
    (and complex128), else :data:`ROUND_OFF`."""
    return ROUND_OFF_FLOAT64 if dtype in (torch.float64, torch.complex128) else ROUND_OFF

Hook = Callable[[Tensor], Tensor | None]


class UnitEdit:
    """The rows of a sweep or a patching pass as an edit of the layer's output: unit ``units[r]`` of row ``r`` set to
    ``values`` (in the ``[N, U, ...]`` view, broadcastable to the rows': a baseline ``[1, U, ...]`` or 0-d, or each
    row's own ``[R, 1, ...]``), written into the rows' copy (:func:`~lightning_causal.causal.engine.ablation.replace_units_`).
    A prefix cache's runs take it as they take the hidden-unit estimators' rows
    (:func:`~lightning_causal.causal.effects.unit_rows.unit_rows`): applied to the rows of its cached output
    (``in_place``), and, where a linear layer reads that output, answered by the linear update from the units it
    names (``changed_units``, :mod:`~lightning_causal.causal.engine.linear_update`).

    Args:
        units: ``[R]`` the unit set in each row.
        values: the values, in the ``[N, U, ...]`` view.
        layout: where the units are in the layer's own output.

    Examples:
        >>> edit = UnitEdit(torch.tensor([1, 0]), torch.tensor(0.0), Layout(1, 1, 3))
        >>> edit(torch.ones(2, 3)), edit.changed_units[1:]
        (tensor([[1., 0., 1.],
                [0., 1., 1.]]), (1, 1))
    """

    def __init__(self, units: Tensor, values: Tensor, layout: Layout) -> None:
        self.units, self.values, self.layout = units, values, layout
        #: ``(units [R], unit_dim, unit_size)`` in the layer's own output: what the linear update reads
        self.changed_units = (units, layout.dim, layout.unit_size)

    def on_units(self, h: Tensor) -> Tensor:
        """The rows' ``[R, U, ...]`` view ``h`` (a copy the caller owns) with the units set, in place; returns ``h``."""
        return replace_units_(h, self.units, self.values)

    def in_place(self, h: Tensor) -> Tensor:
        """The rows' output ``h`` in the layer's own layout (a copy the caller owns) with the units set, in place
        (through its ``[R, U, ...]`` view, a view of ``h``); returns ``h``."""
        self.on_units(to_units(h, self.layout))
        return h

    def __call__(self, h: Tensor) -> Tensor:
        return self.in_place(h.clone())


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the value it waited for is recorded."""


def check_value_spec(name: str, value: object) -> ValueSpec:
    """``"zero"``, ``"mean"`` or a finite number."""
    if value in ("zero", "mean"):
        return value  # type: ignore[return-value]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) == float(value) and abs(value) != float("inf"):
        return float(value)
    raise ValueError(f"Expected argument `{name}` to be 'zero', 'mean' or a finite number but got {value!r}")


def layer_values(h: Tensor, spec: ValueSpec, layer: str = "", parameter: str = "ablation", *,
                 real: Tensor | None = None, layout: Layout | None = None) -> Tensor:
    """The value a unit of activations ``h [N, U, ...]`` is set to: ``[1, U, ...]`` for ``"mean"``
    (the probe mean of each element), a 0-d tensor otherwise.

    With padding (``real``: ``[N, T]`` booleans of the input's real positions), the mean of an
    output ``[N, T, ...]`` over the input's positions counts at each position only the samples
    whose position is real (:func:`~lightning_causal.causal.engine.ablation.position_mean`): the
    hidden states of padded positions, which the output never reads, are no part of it, and the
    same sentences padded otherwise (another length, another pad id) get the same values.
    ``layout``: where ``h``'s units are in the layer's own output (``h`` is the
    :func:`~lightning_causal.causal.engine.units.to_units` view; ``None``: dimension 1).

    Integer activations (token ids, category codes at an integer site) take ``"zero"`` or an
    integral number; the mean of ids, or a fraction, is no id: ``ValueError`` naming ``parameter``
    and ``layer``."""
    integer = not (h.is_floating_point() or h.is_complex())
    if integer and (spec == "mean" or (spec != "zero" and float(spec) != round(float(spec)))):
        raise ValueError(
            f"Expected argument `{parameter}` to be 'zero' or an integral value for layer {layer!r}, whose values are "
            f"integers ({h.dtype}: token ids or category codes), but got {spec!r}: "
            + ("the probe mean of ids is no id" if spec == "mean" else "a fraction is no id")
            + f"; pass `{parameter}='zero'` or an id (e.g. the pad or [MASK] id)")
    if spec == "mean":
        if real is None:
            return h.mean(0, keepdim=True)
        native = h if layout is None else from_units(h, layout)
        mean = position_mean(native, real)
        return mean if layout is None else to_units(mean, layout)
    return torch.tensor(0.0 if spec == "zero" else float(spec), dtype=h.dtype, device=h.device)


@contextlib.contextmanager
def hooked(model: nn.Module, hooks: Mapping[str, Hook],
           resolve: Callable[[str], nn.Module] | None = None) -> Iterator[None]:
    """Forward hooks ``name -> fn(output) -> replacement or None`` for the ``with`` block; exactly
    these handles are removed on exit, also on exceptions. ``resolve`` finds a module by name
    (default: :func:`resolve_module` on ``model``; a caller that hooks the same layers in every run
    passes a cached one)."""
    resolve = resolve or (lambda name: resolve_module(model, name))
    handles = []

    def make(name: str, fn: Hook):
        def hook(_m: nn.Module, _i: object, out: object) -> object:
            new = fn(module_output(out, name))
            return None if new is None else replace_output(out, new)

        return hook

    try:
        for name, fn in hooks.items():
            handles.append(resolve(name).register_forward_hook(make(name, fn)))
        yield
    finally:
        for h in handles:
            h.remove()


class _Leaves(fx.Tracer):
    def __init__(self, leaves: set[str]) -> None:
        super().__init__()
        self._leaves = leaves

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname in self._leaves or super().is_leaf_module(m, qualname)


def bypassed(model: nn.Module, source: str, layer: str, call: tuple[Sequence[Any], Mapping[str, Any]] | None = None) -> bool:
    """Whether a path from the output of module ``source`` to the model's output avoids module
    ``layer`` (a skip connection around it), read from the ``torch.fx`` graph. ``True`` (the safe
    answer: the caller then measures those paths) when the model does not trace or either module
    is called other than once, or its forward is replaced on the instance (torch.fx traces the class's). ``call``: the
    ``(args, kwargs)`` of the model's calls, which the model is traced through (a shallow copy, its non-tensor values
    specialised, ``*args``/``**kwargs`` flat: :func:`~lightning_causal.causal.engine.suffix.flat_call`).

    Examples:
        >>> class Skip(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)
        ...     def forward(self, x):
        ...         h = self.a(x)
        ...         return self.b(h) + h
        >>> bypassed(Skip(), "a", "b"), bypassed(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), "0", "1")
        (True, False)
    """
    caches = dict_items(model)  # a cache the forward writes into keeps no Proxy of the trace
    try:
        root = flat_call(model, *call) if call is not None else model
        _class_forward(model)  # torch.fx traces the class's forward: one replaced on the instance is refused (True)
        graph = _Leaves({source, layer}).trace(root)
    except Exception:  # noqa: BLE001 - any tracing failure means: assume a bypass
        return True
    finally:
        put_back_items(caches)
    sites = {name: [n for n in graph.nodes if n.op == "call_module" and n.target == name] for name in (source, layer)}
    if any(len(found) != 1 for found in sites.values()):
        return True
    start, wall = sites[source][0], sites[layer][0]
    seen, todo = {start}, [start]
    while todo:
        for user in todo.pop().users:
            if user is not wall and user not in seen:
                seen.add(user)
                todo.append(user)
    return any(n.op == "output" for n in seen)


#: The attributes every ``nn.Module`` holds (its parameters, buffers, submodules, hooks): compared apart, or not read
#: by a trace (hooks run where a traced graph calls the module; a module it traces through runs without its hooks).
_MODULE_STATE = frozenset(vars(nn.Module())) - {"training"}


def _written(value: Any) -> int | None:
    """The version counter of a tensor (bumped by every in-place write), ``None`` for another value or an inference
    tensor (which keeps none)."""
    if not isinstance(value, Tensor):
        return None
    try:
        return value._version
    except RuntimeError:
        return None


class FxTraces:
    """The ``torch.fx`` work the graphs of one model share (:func:`~lightning_causal.causal.structure.graph.\
graph_stability`'s resamples and noisy copies, between which nothing changes the model): the plain suffix after each
    layer (:func:`~lightning_causal.causal.engine.suffix.suffix_module`, or ``None`` where it cannot be split) and
    whether a path avoids a layer (:func:`bypassed`), traced once, not once a graph.

    An answer is reused only for the same layers and a call of the same specialised values: the values other than
    tensors (numbers, ``None``, tuples of numbers, the ``*args``/``**kwargs`` structure), which the trace writes in as
    constants, and tensors where the traced call had tensors (the binding's own check, ``_Binding.values``); and only
    while the model is the tree it was traced from: every module's name and object, its class's ``forward``, every
    parameter and buffer object, and every other attribute of the module (a ``forward`` set on the instance, its
    ``training`` flag, a flag its forward branches on, ``self.use_skip``, a number it writes in, ``self.scale``, a
    tensor kept as a plain attribute), which the trace specialises: numbers, strings, ``None`` and containers of them
    compared by value, other objects by identity (a module, weight, buffer or tensor attribute replaced, a class's
    forward patched, the mode flipped, a flag a forward pass sets from its data: traced again), a buffer or tensor
    attribute also by its version counter (written in place, ``self.clamp.fill_(...)`` in an ActNorm-style first
    call: traced again). Objects held by identity are not looked into (a config namespace changed in place is not
    watched). Weights changed in place need no new trace: a suffix holds the model's own modules and parameters, not
    copies. A tensor kept as a plain attribute is held by a weak reference (one ``weakref.ref`` object per live
    tensor: compared by identity; a forward storing a new tensor each pass, ``self.last = h``, keeps no activation
    alive through the answers, each pass tracing again). Each graph still
    checks that a suffix gives its model's output on one of its own probe rows (:meth:`GraphContext._reproduces`).
    """

    def __init__(self) -> None:
        self._answers: list[tuple[str, tuple[str, ...], list[Any], Any, Any]] = []

    @staticmethod
    def _tree(model: nn.Module) -> list[Any]:
        """What a trace of ``model`` depends on, compared by :func:`_same_value`: names, numbers and containers of
        them by value (a copy), other objects by identity (held: no id reused while compared)."""
        out: list[Any] = []
        for name, m in model.named_modules(remove_duplicate=False):
            out += [name, m, type(m).forward, *m._parameters.items(),
                    *((key, b, _written(b)) for key, b in m._buffers.items())]
            out += [(key, weakref.ref(value) if isinstance(value, Tensor) else  # a tensor a forward keeps
                     copy.deepcopy(value) if _of_scalars(value) else value, _written(value))  # (self.last = h) not
                    for key, value in vars(m).items() if key not in _MODULE_STATE]  # pinned: the same ref while alive
        return out

    def answer(self, kind: str, model: nn.Module, layers: tuple[str, ...], call: tuple[Sequence[Any], Mapping[str, Any]],
               make: Callable[[], Any]) -> Any:
        """``make()`` (a trace's answer), or the answer of an earlier call of ``kind`` for ``layers`` that holds here."""
        try:
            binding = _Binding(model, *call)
        except SplitRefused:  # a call the trace refuses: nothing to share
            return make()
        tree = self._tree(model)
        for k, ls, was, traced, answer in self._answers:
            if k == kind and ls == layers and len(was) == len(tree) and all(map(_same_value, tree, was)):
                try:
                    traced.values(*call)
                except SplitRefused:  # other specialised values: another trace
                    continue
                return answer
        answer = make()
        self._answers.append((kind, layers, tree, binding, answer))
        return answer


@dataclass(kw_only=True)
class GraphContext:
    """The clean pass over the probe and the runs a graph is built from.

    Attributes:
        forward: how the model is called (``output=``, ``additional_forward_args=``).
        xs: the probe inputs.
        layers: the chosen layers, in forward order.
        acts: clean activations ``[N, U, ...]`` of each chosen layer, units on dimension 1 whatever
            the layer's own layout (:func:`~lightning_causal.causal.engine.units.to_units`).
        layouts: where each layer's units are in its own output (absent: dimension 1). Every
            value and hook of this class is in the ``[N, U, ...]`` view; the model sees its own.
        tidx: the explained class of each sample ``[N]``.
        f0: the clean target output ``f_t(x)`` ``[N]``.
        max_batch_size: rows per forward pass (``None``: sized by memory).
        real: ``[N, T]`` booleans of the input's real positions when the forward arguments mark
            padding (a zero ``attention_mask``, steps past ``lengths``), else ``None``: the mean
            values of :meth:`values` count real positions only.
        noisy: the model draws noise in eval mode (set by the caller that found it): every row of a sweep runs,
            none is left out as running the clean sample (:mod:`~.path_effects`).
    """

    forward: Forward
    xs: tuple[Tensor, ...]
    layers: list[str]
    acts: dict[str, Tensor]
    tidx: Tensor
    f0: Tensor
    max_batch_size: int | None = None
    tensor_output: dict[str, bool] = field(default_factory=dict)
    layouts: dict[str, Layout] = field(default_factory=dict)
    real: Tensor | None = None
    outputs: int = 1  # the explained output's columns (its classes): which output:<c> nodes exist
    noisy: bool = False
    row0: Tensor | None = None  # the clean pass's whole output of sample 0: what a plain suffix must reproduce
    traces: FxTraces | None = None  # torch.fx traces shared with other graphs of the model (graph_stability's)
    _suffixes: dict[str, nn.Module | PrefixCache | None] = field(default_factory=dict)
    _traced: dict[str, nn.Module | None] = field(default_factory=dict)
    _modules: dict[str, nn.Module] = field(default_factory=dict)
    _rows: dict[tuple[str | None, int, str | None], int] = field(default_factory=dict)
    _edits: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def build(cls, forward: Forward, xs: tuple[Tensor, ...], layers: list[str], target: object, *,
              max_batch_size: int | None = None, layouts: Mapping[str, Layout] | None = None,
              traces: FxTraces | None = None) -> GraphContext:
        """Run the clean pass (inside the caller's ``audit_mode``) and check the layers; ``traces``: the torch.fx traces
        shared with other graphs of the model (:class:`FxTraces`)."""
        layouts = dict(layouts or {})
        kinds: dict[str, list[type]] = {name: [] for name in layers}
        probes = [resolve_module(forward.model, name).register_forward_hook(
            lambda _m, _i, o, k=kinds[name]: k.append(type(o))) for name in layers]
        try:  # a module that runs several times is refused below, naming its calls: capture's warning would say less
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RepeatedCallsWarning)
                with capture(forward.model, layers) as acts:
                    out = forward(*xs)
        finally:
            for p in probes:
                p.remove()
        _check_clean_pass(out, layers, dict(acts), kinds)
        check_samples_independent(forward, xs, out, "A causal graph", one_row=max_batch_size == 1 and xs[0].shape[0] > 1)
        if max_batch_size == 1 and xs[0].shape[0] > 1:  # the intervened rows run alone: the clean samples too
            out, acts = activations_alone(forward, xs, layers, calls={name: len(kinds[name]) for name in layers},
                                          what="the causal graph", whole=out)
        tidx, f0 = explained_target(forward, xs, out, target, "A causal graph")  # type: ignore[arg-type]
        acts = {name: to_units(h, layouts[name]) if name in layouts else h for name, h in acts.items()}
        fargs = forward.args.kwargs or forward.args.args or None
        steps = padded_steps(xs, fargs, model=forward.model)  # of the input the argument describes
        return cls(forward=forward, xs=xs, layers=layers, acts=acts, tidx=tidx, f0=f0,
                   max_batch_size=max_batch_size, tensor_output={name: issubclass(kinds[name][0], Tensor) for name in layers},
                   layouts=layouts, real=None if steps is None else ~steps,
                   outputs=int(out.shape[1]) if out.dim() > 1 else 1, row0=out[:1].detach(), traces=traces)

    def values(self, layer: str, spec: ValueSpec, parameter: str = "ablation") -> Tensor:
        """:func:`layer_values` of ``layer``'s clean activations (``"mean"``: at real positions only)."""
        return layer_values(self.acts[layer], spec, layer, parameter, real=self.real, layout=self.layouts.get(layer))

    def layout(self, layer: str) -> Layout:
        """Where ``layer``'s units are in its own output (dimension 1 unless :attr:`layouts` says otherwise)."""
        return self.layouts.get(layer) or Layout(1, 1, int(self.acts[layer].shape[1]))

    def native(self, layer: str, h: Tensor) -> Tensor:
        """``h`` in the ``[N, U, ...]`` view back in ``layer``'s own layout."""
        return from_units(h, self.layouts[layer]) if layer in self.layouts else h

    def _hooked(self, hooks: Mapping[str, Hook], rows: int) -> contextlib.AbstractContextManager[None]:
        """:func:`hooked` with each hook reading and returning the ``[N, U, ...]`` view; a chosen
        layer must return one row per row of the pass (``rows``), as on the probe."""
        def wrap(name: str, fn: Hook) -> Hook:
            def in_units(out: Tensor) -> Tensor | None:
                if out.dim() == 0 or out.shape[0] != rows:
                    raise ValueError(
                        f"Expected module {name!r} to return one row per row of a pass ({rows}), as on the probe, but "
                        f"it returned {list(out.shape)}: it runs on some rows only once units are intervened on (an "
                        "expert of a mixture that an intervention routes rows away from, a branch). Choose `layers` "
                        "that run on every row (e.g. where the experts' outputs are combined)")
                if name not in self.layouts:
                    return fn(out)
                new = fn(to_units(out, self.layouts[name]))
                return None if new is None else from_units(new, self.layouts[name])

            return in_units

        return hooked(self.model, {name: wrap(name, fn) for name, fn in hooks.items()}, self._module)

    def _module(self, name: str) -> nn.Module:
        """``resolve_module`` of ``name``, looked up once per graph (every run hooks the same layers)."""
        if name not in self._modules:
            self._modules[name] = resolve_module(self.model, name)
        return self._modules[name]

    @property
    def model(self) -> nn.Module:
        return self.forward.model

    @property
    def call(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The ``(args, kwargs)`` of the model's call on the probe (what a variadic forward is traced through)."""
        args, kwargs = self.forward.args.take(None)
        return (*self.xs, *args), kwargs

    @property
    def n(self) -> int:
        return int(self.f0.shape[0])

    def output_tolerance(self) -> float:
        """Per-sample output changes at or below this are round-off (``round_off · E|f_t(x)|``)."""
        return round_off(self.f0.dtype) * float(self.f0.abs().mean()) + torch.finfo(self.f0.dtype).tiny

    def unit_tolerance(self, layer: str) -> float:
        """Per-sample changes of a unit of ``layer`` at or below this are round-off."""
        return round_off(self.acts[layer].dtype) * float(self.acts[layer].abs().max()) + torch.finfo(self.acts[layer].dtype).tiny

    def suffix(self, layer: str, total_rows: int = 0) -> nn.Module | PrefixCache | None:
        """How runs from ``layer`` go, decided on its first call that can (``None``: full passes):

        - the ``torch.fx`` suffix after ``layer`` when the model traces and no skip tensor crosses
          it (cheap to build: nothing runs);
        - else, once a call brings at least :data:`CACHE_MIN_ROWS` rows per probe sample
          (``total_rows``), the prefix cache (:func:`prefix_cache`: the fx split with the skip
          tensors cached, or the hook split for models that do not trace, e.g. Hugging Face), whose
          probe run and checks those rows pay for; never cut to the read positions (hooks on later
          layers see whole values); until then full passes, undecided;

        either only if it still calls every later chosen layer (a traced graph inlines the modules).
        """
        if layer in self._suffixes:
            return self._suffixes[layer]
        if layer not in self._traced:  # the plain fx suffix takes a tensor output only
            self._traced[layer] = self._shared("suffix", (layer,), lambda: suffix_module(self.model, layer, self.call)) \
                if self.tensor_output[layer] else None
            if self._traced[layer] is not None and not self._reproduces(layer, self._traced[layer]):
                self._traced[layer] = None
        found: nn.Module | PrefixCache | None = self._traced[layer]
        if total_rows < CACHE_MIN_ROWS * self.n:
            if found is None:  # undecided: full passes until a call brings enough rows
                return None
        elif found is None or self._read_by_linear(layer, found):  # the prefix cache cuts a tuple at element 0 (Hugging Face attention)
            try:
                cache = prefix_cache(self.forward, self.xs, layer)
            except ValueError:  # the model cannot be split there: full passes (or the plain suffix)
                cache = None
            layout = self.layout(layer)
            if cache is not None and cache.path != "full" and (found is None or cache.linear.answers(layout.dim, layout.unit_size)):
                found = cache  # beside a plain suffix, only where its linear update answers a layer reading the output
        later = self.layers[self.layers.index(layer) + 1:]
        if found is not None and later:
            one = torch.zeros(1, dtype=torch.long, device=self.acts[layer].device)
            with capture(self.model, later) as got:
                self._run(found, self.native(layer, self.acts[layer][one]), one)
            found = found if all(name in got for name in later) else None
        self._suffixes[layer] = found
        return found

    def _shared(self, kind: str, layers: tuple[str, ...], make: Callable[[], Any]) -> Any:
        """``make()``, through :attr:`traces` where the graph shares them."""
        return make() if self.traces is None else self.traces.answer(kind, self.model, layers, self.call, make)

    def bypassed(self, source: str, layer: str) -> bool:
        """:func:`bypassed` of the model's call on the probe (through :attr:`traces` where the graph shares them)."""
        return self._shared("bypassed", (source, layer), lambda: bypassed(self.model, source, layer, self.call))

    def _reproduces(self, layer: str, suffix: nn.Module) -> bool:
        """Whether the plain suffix gives the model's output on one probe row: it is traced from the class's
        ``forward``, which a forward replaced on the instance (``model.forward = fn``, ``types.MethodType``) or a forward
        hook on the model is not; its whole output row against the clean pass's (``row0``: no pass of the model), every
        class, not the explained one only (a hook adding to another class's logit moves every row explained as it)."""
        one = torch.zeros(1, dtype=torch.long, device=self.acts[layer].device)
        with torch.no_grad():
            out = self._run(suffix, self.native(layer, self.acts[layer][one]), one)
            if not isinstance(out, Tensor):
                return False
            if self.row0 is not None and out.shape == self.row0.shape:
                return close(out, self.row0)
            return close(gather_target(out, self.tidx[one]), self.f0[one])

    def _read_by_linear(self, layer: str, suffix: nn.Module) -> bool:
        """Whether an ``nn.Linear`` or a convolution that the linear update answers for the layer's units reads the
        plain fx ``suffix``'s input as it is (the update's readers,
        :class:`~lightning_causal.causal.engine.linear_update.LinearReaders`, recorded in a run of one sample): beside
        a plain suffix the prefix cache serves that update only, and its probe run and checks (on a small CNN 7 passes
        of the model per layer, 12-20% of the graph's CPU time) are not paid for where an activation, or a
        convolution the update does not answer (a depthwise one), reads the layer, nor where the convolutions it
        answers spare fewer than :data:`CONV_CACHE_MIN_WORK` multiply-adds a row (a small CNN's)."""
        readers = LinearReaders(nn.Identity(), entry=suffix)
        one = torch.zeros(1, dtype=torch.long, device=self.acts[layer].device)
        value = self.native(layer, self.acts[layer][one])
        try:
            with torch.no_grad(), readers.recording(suffix, at_entry=True):
                suffix(value.clone())
        except Exception:  # noqa: BLE001 -- a suffix that fails on one row: the prefix cache decides, as before
            return True
        readers.value, layout = value, self.layout(layer)
        if not readers.answers(layout.dim, layout.unit_size):
            return False
        spared = readers.conv_work_spared(layout.dim, layout.unit_size)
        return spared is None or spared >= CONV_CACHE_MIN_WORK

    def _run(self, suffix: nn.Module | PrefixCache, value: Tensor | UnitEdit, s: Tensor) -> Tensor:
        if isinstance(value, UnitEdit):  # the cache applies it to a fresh copy of its rows
            return suffix(value, s)  # type: ignore[operator]
        value = value.clone()  # the model's to overwrite in place (ReLU(inplace=True)), not ours
        return suffix(value, s) if isinstance(suffix, PrefixCache) else self.forward.select(suffix(value))

    def rows(self, layer: str | None, total_rows: int = 0) -> int:
        """Rows per pass for runs from ``layer`` (``None``: full forward passes) of ``total_rows``
        rows in all (which decide how they run: :meth:`suffix`)."""
        suffix = self.suffix(layer, total_rows) if layer is not None else None
        # measured once per way of running (each measurement is a trial pass); a prefix cache that fell
        # back to full passes (its path) is another way
        key = (layer if suffix is not None else None, id(suffix), getattr(suffix, "path", None))
        if key not in self._rows:
            if isinstance(suffix, PrefixCache):
                self._rows[key] = suffix.rows_per_pass(self.max_batch_size)
            elif suffix is not None:
                self._rows[key] = rows_per_pass(suffix, (self.native(layer, self.acts[layer]),), self.max_batch_size)
            else:
                self._rows[key] = rows_per_pass(self.model, self.xs, self.max_batch_size, forward=self.forward)
        return self._rows[key]

    def logits_from(self, layer: str, patched: Tensor | UnitEdit, s: Tensor, hooks: Mapping[str, Hook] | None = None) -> Tensor:
        """``f_t`` of rows whose activation of ``layer`` is ``patched`` (row ``r`` is sample ``s[r]``; a
        :class:`UnitEdit` of the rows' clean activations), run as :meth:`rows` decided for ``layer``. An edit goes to
        a prefix cache as it is, where the cache edits its cached output, which holds the clean activations bit for
        bit (:meth:`_edits_cache`; a linear layer reading the output is then answered by the linear update);
        elsewhere it is applied to a copy of the rows' clean activations first."""
        hooks = dict(hooks or {})
        suffix = self._suffixes.get(layer)
        if isinstance(patched, UnitEdit) and not (isinstance(suffix, PrefixCache) and self._edits_cache(layer, suffix)):
            patched = patched.on_units(self.acts[layer][s])
        if suffix is not None:
            value = patched if isinstance(patched, UnitEdit) else self.native(layer, patched)
            if isinstance(suffix, PrefixCache):
                suffix.prepare(value)  # the linear update's trial rows, outside the hooks that record and clamp the rows
            with self._hooked(hooks, s.shape[0]):
                return gather_target(self._run(suffix, value, s), self.tidx[s])
        return self.logits(s, {**hooks, layer: lambda _h: patched})

    def _edits_cache(self, layer: str, cache: PrefixCache) -> bool:
        """Whether an edit given to ``cache`` sets the units of the clean activations and nothing else: the cache
        edits its cached output (:attr:`~lightning_causal.causal.engine.prefix_cache.PrefixCache.edits_value`), equal
        to the graph's clean activations of ``layer`` bit for bit (checked once per cache)."""
        if layer not in self._edits:
            same = cache.value.shape == self.native(layer, self.acts[layer]).shape
            self._edits[layer] = cache.edits_value and same and torch.equal(cache.value, self.native(layer, self.acts[layer]))
        return self._edits[layer] and cache.edits_value

    def logits(self, s: Tensor, hooks: Mapping[str, Hook]) -> Tensor:
        """``f_t`` of a full forward pass over samples ``s`` with ``hooks``."""
        with self._hooked(hooks, s.shape[0]):
            out = self.forward(*(x[s] for x in self.xs), rows=s)
        return gather_target(out, self.tidx[s])

    def value_at(self, layer: str, s: Tensor, hooks: Mapping[str, Hook]) -> Tensor:
        """The output of ``layer`` in a forward pass over samples ``s`` with ``hooks`` (the pass
        stops there)."""
        got: list[Tensor] = []

        def stop(h: Tensor) -> None:
            got.append(h)
            raise _Stop

        try:
            with self._hooked({**hooks, layer: stop}, s.shape[0]):
                self.forward(*(x[s] for x in self.xs), rows=s)
        except _Stop:
            pass
        if not got:  # it ran in the clean pass (checked there): skipped at random, or on some rows only
            raise skipped_modules_error([layer], s)
        return got[0]


def _check_clean_pass(out: Tensor, layers: list[str], acts: dict[str, Tensor], kinds: dict[str, list[type]]) -> None:
    if not isinstance(out, Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        fix = f"; {output_fix(out)}" if isinstance(out, Tensor) and out.dim() > 2 else ""
        raise ValueError(f"Expected a model returning [N, outputs] (logits, or one column for a regression) but it returned {shape}{fix}")
    missing = [name for name in layers if name not in acts]
    if missing:
        raise ValueError(f"Expected every module of `layers` to run in the forward pass but {missing} did not")
    twice = [name for name in layers if len(kinds[name]) > 1]
    if twice:
        calls = ", ".join(f"{name!r} {len(kinds[name])} times" for name in twice)
        raise ValueError(
            f"Expected every module of `layers` to run once per forward pass but {twice} ran more than once ({calls}: "
            "a shared layer, or a cell unrolled over time): a graph node is one activation per unit, so name a module "
            "that runs once, e.g. an nn.Identity applied to the last hidden state in the forward (unit_effects "
            "intervenes on every call of such a module)")
    order = list(acts)
    if order != layers:
        raise ValueError(f"Expected argument `layers` in forward order {order} but got {layers}")
    for name, h in acts.items():
        check_samples_first(name, h.shape, out.shape[0])
        if h.dim() < 2:
            raise ValueError(f"Expected module {name!r} to output [N, units, ...] but got shape {tuple(h.shape)}")


def unit_layouts(forward: Forward, xs: tuple[Tensor, ...], layers: list[str], dims: Mapping[str, int | None],
                 heads: Mapping[str, int | None], named: dict[str, str] | None = None) -> dict[str, Layout]:
    """Each layer's unit layout (only those that are not dimension 1), after the checks of one
    sample's pass: heads only where the output is not projected, the default only where the
    features are not last. Call it inside ``input_sites`` for ``"<module>:input"`` layers. ``named``, where given, is
    filled with the layers whose units the pass names otherwise than ``unit_dim`` does
    (:func:`~..engine.unit_sites.named_unit_kind`: ``"position"`` after a convolution, ``"mode"`` of a spectrum)."""
    layouts = {}
    for layer in layers:
        facts = check_site_units_named(forward.model, layer, lambda xi, r: forward(*xi, rows=r), xs, dims[layer], heads[layer],
                                       "Pass `unit_dim=-1` (for all layers, or a mapping layer -> dim) for its features (neurons).")
        layout = resolve_layout(facts.shape, dims[layer], heads[layer])
        if (layout.dim, layout.unit_size) != (1, 1):
            layouts[layer] = layout
        if named is not None and (kind := named_unit_kind(facts, dims[layer], heads[layer])) in ("position", "mode"):
            named[layer] = kind
    return layouts
