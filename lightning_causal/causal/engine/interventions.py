"""The do-operator on hidden units: interventions, the :func:`intervene` context manager, and
:func:`capture` to record activations.

A *site* is a module path from ``model.named_modules()``, or ``"<module>:input"`` for the module's
first positional input (:mod:`~lightning_causal.causal.engine.input_sites`); an intervention
replaces that module's output (or input) (a tensor whose dimension 1 holds the units by default: conv channels or neurons),
optionally only for a selection of ``units``. ``unit_dim=`` and ``num_heads=`` place the units
elsewhere (the neurons of ``[N, T, D]`` hidden states with ``unit_dim=-1``; attention heads of
``[N, T, H * d]`` with ``num_heads=H``; see :mod:`~lightning_causal.causal.engine.units`).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import chain

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from lightning_causal.causal.engine.ablation import position_mean, reference_mask
from lightning_causal.causal.engine.eager import (
    check_eager_possible,
    force_eager,
    named_modules,
    user_name,
)
from lightning_causal.causal.engine.forward import check_not_meta
from lightning_causal.causal.engine.head_sites import check_head_width, check_heads
from lightning_causal.causal.engine.input_sites import (
    SUFFIX,
    attached_site,
    input_parent,
    input_sites,
)
from lightning_causal.causal.engine.live_values import rebuild
from lightning_causal.causal.engine.quantized import check_not_quantized
from lightning_causal.causal.engine.unit_sites import (
    check_unit_dimension,
    first_tensor,
    is_model_output,
)
from lightning_causal.causal.engine.units import (
    Layout,
    check_layout_options,
    per_unit_values,
    resolve_layout,
    unit_positions_mask,
)

__all__ = [
    "module_output",
    "replace_output",
    "Intervention",
    "Zero",
    "SetTo",
    "MeanOf",
    "Resample",
    "Scale",
    "intervene",
    "capture",
    "resolve_module",
]


def resolve_module(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule called ``name``; unknown names raise ``ValueError`` with close matches.

    A module inside a layer's weight parametrizations (``"2.parametrizations.weight"`` of a
    ``weight_norm``-ed layer ``"2"``: it computes the weight, not activations) and the name of a
    parameter or buffer (``"2.weight_orig"`` of a pruned layer) raise a ``ValueError`` naming the layer.

    Examples:
        >>> m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> resolve_module(m, "0")
        Linear(in_features=2, out_features=3, bias=True)
    """
    if not isinstance(name, str):
        names = [n for n in named_modules(model) if n][:5]
        raise TypeError(f"Expected a layer given as one module name (str), e.g. one of {names}, but got "
                        f"{type(name).__name__} {name!r:.80}")
    parent = input_parent(name)
    if parent is not None:  # "<module>:input": the module's input, attached by `input_sites`
        return attached_site(resolve_module(model, parent), name)
    modules = named_modules(model)
    name = user_name(name)
    layer = _parametrized_layer(modules, name)
    if layer is not None:  # a module of a weight parametrization (or its parameter): it computes a weight, not activations
        raise ValueError(
            f"Expected a layer's name but {name!r} lies in the weight parametrizations of module {layer!r} "
            "(torch.nn.utils.parametrize: weight_norm, spectral_norm, register_parametrization), which compute that "
            f"layer's weight when it is read, not an activation of the samples; name the layer {layer!r} for its output "
            f"(or {layer + SUFFIX!r} for its input)")
    if name not in modules:
        owner, _, attr = name.rpartition(".")
        if isinstance(getattr(modules.get(owner), attr, None), Tensor):  # a parameter or buffer ("2.weight_orig")
            raise ValueError(f"Expected a module name but {name!r} is a tensor ({attr!r}) of module {owner!r}; name the "
                             f"module {owner!r} for its output (or {owner + SUFFIX!r} for its input)")
        names = [n for n in modules if n and _parametrized_layer(modules, n) is None]
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
        hint = f"close matches: {close}" if close else f"available: {names[:20]}"
        raise ValueError(f"Unknown module name {name!r} in model {type(model).__name__}; {hint}")
    _check_eager(model, modules, name)
    _check_not_meta_site(model, modules, name)
    return modules[name]


def _check_not_meta_site(model: nn.Module, modules: Mapping[str, nn.Module], name: str) -> None:
    """Refuse a layer that is, or lies inside, a module whose weights are all on the ``meta`` device: in
    a model that runs, such a module is the skeleton that ``torch.func.functional_call`` runs with other
    weights (the model-ensembling recipe: ``stack_module_state`` and ``vmap``), where hooks see vmapped
    tensors (a container holding it beside real layers is no skeleton: its other layers are sites); a
    model that is meta throughout gets :func:`~lightning_causal.causal.engine.forward.check_not_meta`'s message."""
    # one look at each module's own tensors (a buffer a torch.fx trace left as a Proxy is none): a model without
    # meta ones, nearly every one, has no such module
    if not any(isinstance(t, Tensor) and t.is_meta for m in modules.values() for t in chain(m._parameters.values(), m._buffers.values())):
        return
    parts = name.split(".") if name else []
    for path in (".".join(parts[: i + 1]) for i in range(len(parts))):
        module = modules.get(path)
        tensors = [] if module is None else [t for t in chain(module.parameters(), module.buffers()) if isinstance(t, Tensor)]
        if not tensors or not all(t.is_meta for t in tensors):
            continue
        if all(t.is_meta for t in (*model.parameters(), *model.buffers())):
            check_not_meta(model)
        raise ValueError(
            f"Expected layer {name!r} to run with weights of its own, but module {path!r} holds its weights on the meta "
            "device (shapes without data): it runs only through torch.func.functional_call with other weights (under "
            "vmap for an ensemble), where hooks cannot intervene per sample. Name a site outside it (the input of the "
            "module that reads its result, '<module>:input'), or materialise it (`to_empty` then `load_state_dict`)")


def _check_eager(model: nn.Module, modules: Mapping[str, nn.Module], name: str) -> None:
    """Refuse a layer that is, or lies inside, a TorchScript module (``torch.jit.script``/``trace``):
    its submodules run inside the compiled graph, where forward hooks can neither see nor replace their
    outputs (a scripted module refuses hooks; a traced one never calls them)."""
    parts = name.split(".") if name else []
    for path in ["", *(".".join(parts[: i + 1]) for i in range(len(parts)))]:
        module = model if not path else modules.get(path)
        if isinstance(module, torch.jit.ScriptModule):
            where = "the model" if not path else f"module {path!r}"
            raise ValueError(
                f"Expected layer {name!r} in an eager nn.Module, but {where} is a TorchScript module "
                f"({type(module).__name__}, made by torch.jit.script or torch.jit.trace): its submodules run inside the "
                "compiled graph, where forward hooks cannot see or replace their outputs. Pass the eager module you "
                "scripted or traced (input-level methods such as input_effects accept TorchScript models)")


def _parametrized_layer(modules: Mapping[str, nn.Module], name: str) -> str | None:
    """The layer in whose ``parametrizations`` (``torch.nn.utils.parametrize``) ``name`` lies
    (``"2"`` for ``"2.parametrizations.weight"`` or ``"2.parametrizations.weight.original0"``), else ``None``."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        layer = ".".join(parts[:i])
        if part == "parametrizations" and layer in modules and parametrize.is_parametrized(modules[layer]):
            return layer
    return None


def module_output(output: object, name: str = "module") -> Tensor:
    """The tensor a module returns: the output itself, or element 0 of a tuple or list (Hugging Face
    attention and transformer blocks return ``(hidden, attention weights, ...)``).

    Examples:
        >>> module_output((torch.ones(1), None))
        tensor([1.])
    """
    tensor = first_tensor(output)
    if tensor is not None:
        return tensor
    raise TypeError(f"Expected module {name!r} to return a tensor, a tuple whose element 0 is a tensor or a Hugging Face "
                    f"ModelOutput whose first field is one but got {type(output).__name__}")


def replace_output(output: object, value: Tensor) -> object:
    """``output`` with its tensor (itself, or element 0 of a tuple/list) replaced by a copy of
    ``value``: the model may write to it in place (``ReLU(inplace=True)``), which must reach neither
    a broadcast value (an error) nor a tensor the caller reuses (a silent change)."""
    value = value.clone()
    if isinstance(output, Tensor):
        return value
    if is_model_output(output):  # a Hugging Face ModelOutput: its first field replaced, in a copy
        fields = dict(output)
        fields[next(iter(fields))] = value
        return type(output)(**fields)
    return rebuild(output, (value, *output[1:])) if isinstance(output, tuple) else [value, *output[1:]]


Units = int | Sequence[int] | None


class Intervention:
    """Base class: replaces a module output's ``units`` by :meth:`values`.

    Args:
        units: ``None`` (all units), an int, or a sequence of unit indices.
        unit_dim: the dimension that indexes units (default 1; ``-1`` for ``[N, T, D]`` neurons).
        num_heads: group the unit dimension (the last one when ``unit_dim`` is not given) into
            this many contiguous heads; a unit is then a head.

    Examples:
        >>> Zero(units=1, num_heads=2)(torch.ones(1, 2, 4))
        tensor([[[1., 1., 0., 0.],
                 [1., 1., 0., 0.]]])
    """

    def __init__(self, units: Units = None, *, unit_dim: int | None = None, num_heads: int | None = None) -> None:
        if units is not None:
            seq = [units] if isinstance(units, int) else list(units)
            if not seq or not all(isinstance(u, int) and not isinstance(u, bool) and u >= 0 for u in seq):
                raise ValueError(f"Expected argument `units` to be None or non-negative ints but got {units!r}")
            units = seq
        self.units: list[int] | None = units
        self.unit_dim, self.num_heads = check_layout_options(unit_dim, num_heads)

    def layout(self, output: Tensor) -> Layout:
        """Where the units of ``output`` are (:func:`~lightning_causal.causal.engine.units.resolve_layout`)."""
        return resolve_layout(output.shape, self.unit_dim, self.num_heads)

    def with_layout(self, unit_dim: int | None, num_heads: int | None) -> Intervention:
        """This intervention with the unit layout of an estimator's ``unit_dim=`` / ``num_heads=``
        (a shallow copy); one that names its own, different layout is rejected."""
        if (unit_dim, num_heads) == (self.unit_dim, self.num_heads) or unit_dim is None and num_heads is None:
            return self
        if self.unit_dim is not None or self.num_heads is not None:
            raise ValueError(
                f"Expected the intervention's unit layout (unit_dim={self.unit_dim}, num_heads={self.num_heads}) to "
                f"match the estimator's (unit_dim={unit_dim}, num_heads={num_heads})"
            )
        new = copy.copy(self)
        new.unit_dim, new.num_heads = check_layout_options(unit_dim, num_heads)
        return new

    def values(self, output: Tensor) -> Tensor:
        """The intervened values, broadcastable to ``output``."""
        raise NotImplementedError

    def values_like(self, output: Tensor) -> Tensor:
        """:meth:`values` in ``output``'s dtype. An integer output (category codes, token ids) takes
        integer values only: a fractional value would be truncated to another code, silently.

        Raises:
            ValueError: fractional values for an integer output, or :class:`MeanOf` there (the mean
                of codes is not a code).
        """
        values = self.values(output)
        if output.is_floating_point() or output.is_complex() or output.dtype == torch.bool:
            return values.to(output.dtype)
        if isinstance(self, MeanOf):
            raise ValueError(
                f"Expected a floating point output for {self!r} but got integer values of dtype {output.dtype} "
                f"(category codes or token ids: their mean, e.g. {self.mean.flatten()[0].item():g}, is no code); use "
                "Resample(reference) to draw observed codes or SetTo(code)"
            )
        if values.is_floating_point() and not torch.equal(values, values.trunc()):
            bad = values[values != values.trunc()].flatten()[0].item()
            raise ValueError(
                f"Expected integer values for the output of dtype {output.dtype} (category codes or token ids) but "
                f"{self!r} gives {bad:g}, which would be truncated to {int(bad)}; use SetTo(code) or Resample(reference)"
            )
        return values.to(output.dtype)

    def unit_mask(self, output: Tensor) -> Tensor:
        """Boolean mask broadcastable to ``output`` that selects the intervened units."""
        return unit_positions_mask(output.shape, self.layout(output), self.units, output.device)

    def __call__(self, output: Tensor) -> Tensor:
        if not isinstance(output, Tensor):
            raise TypeError(f"{type(self).__name__} can only replace tensor outputs but got {type(output)}")
        return torch.where(self.unit_mask(output), self.values_like(output), output)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(units={self.units})"


class Zero(Intervention):
    """do(h_u := 0).

    Examples:
        >>> Zero(units=[1])(torch.ones(1, 3))
        tensor([[1., 0., 1.]])
    """

    def values(self, output: Tensor) -> Tensor:
        return torch.zeros((), dtype=output.dtype, device=output.device)


def _per_unit(value: Tensor, output: Tensor, name: str, iv: Intervention) -> Tensor:
    """Broadcast a scalar, a per-unit ``[U]`` or a per-element value to ``output``."""
    return per_unit_values(value, output, iv.layout(output), name)


class SetTo(Intervention):
    """do(h_u := value): a scalar, a per-unit vector ``[U]`` (one value per channel, neuron or head),
    a vector along the unit dimension, or a tensor shaped like one sample.

    Examples:
        >>> SetTo(2.0, units=0)(torch.zeros(2, 2))
        tensor([[2., 0.],
                [2., 0.]])
    """

    def __init__(self, value: float | Tensor, units: Units = None, *, unit_dim: int | None = None, num_heads: int | None = None) -> None:
        super().__init__(units, unit_dim=unit_dim, num_heads=num_heads)
        if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
            raise TypeError(f"Expected argument `value` to be a number or a tensor but got {type(value)}")
        # a Python number in float64, cast to the output's dtype when applied: through the default float32
        # SetTo(0.7) set 0.699999988 in a float64 model
        value = torch.as_tensor(value, dtype=torch.float64 if not isinstance(value, Tensor) else None)
        if not torch.isfinite(value).all():
            raise ValueError(f"Expected argument `value` to be finite but got {value}")
        self.value = value

    def values(self, output: Tensor) -> Tensor:
        return _per_unit(self.value, output, "value", self)

    def __repr__(self) -> str:
        v = self.value.item() if self.value.numel() == 1 else f"tensor{list(self.value.shape)}"
        return f"SetTo({v}, units={self.units})"


class MeanOf(Intervention):
    """do(h_u := E_ref[h_u]): the mean activation over ``reference`` (activations ``[M, ...]`` of the
    same module on reference data, e.g. from :func:`capture`).

    The mean is taken per element when ``reference`` is shaped like the output (``[M, *output.shape[1:]]``);
    otherwise (sequences of another length) per position of the unit dimension, over every other
    dimension (the mean over all tokens of each neuron).

    Padded reference sequences: pass their ``attention_mask`` (``[M, T]``, 1 at a real token, 0 at
    padding, as the tokenizer returns it) and the mean counts real tokens only (per element: at
    each position the samples whose position is real, :func:`~lightning_causal.causal.engine.ablation.position_mean`;
    another length: every real token). The hidden state of a padded position is never read by the
    model's output but moves with the real tokens and with the pad id there: without the mask it
    enters the mean, so the value depends on how far the reference was padded.

    Args:
        reference: activations ``[M, ...]`` of the module on reference data.
        units, unit_dim, num_heads: as in :class:`Intervention`.
        attention_mask: ``None`` (every position counts) or the reference's ``[M, T]`` mask
            (``reference`` ``[M, T, ...]``, positions on dimension 1, as Hugging Face hidden states).

    Examples:
        >>> ref = torch.tensor([[[1.0, 10.0]], [[3.0, 30.0]]])  # [M=2, T=1, D=2]
        >>> MeanOf(ref, units=1, unit_dim=-1)(torch.zeros(1, 3, 2))
        tensor([[[ 0., 20.],
                 [ 0., 20.],
                 [ 0., 20.]]])
        >>> padded = torch.tensor([[[1.0], [5.0]], [[3.0], [99.0]]])  # [M=2, T=2, D=1], sample 1 padded at t=1
        >>> MeanOf(padded, unit_dim=-1, attention_mask=torch.tensor([[1, 1], [1, 0]])).mean.flatten()
        tensor([2., 5.])
    """

    def __init__(self, reference: Tensor, units: Units = None, *, unit_dim: int | None = None, num_heads: int | None = None,
                 attention_mask: Tensor | None = None) -> None:
        super().__init__(units, unit_dim=unit_dim, num_heads=num_heads)
        if not isinstance(reference, Tensor) or reference.dim() < 2 or reference.shape[0] == 0:
            raise ValueError("Expected argument `reference` to be a tensor of activations [M, U, ...] with M >= 1")
        if not torch.isfinite(reference).all():
            raise ValueError("Expected argument `reference` to be finite but it holds NaN or infinity")
        ref = reference.detach()
        ref = ref if ref.is_floating_point() else ref.float()
        real = reference_mask(attention_mask, ref)
        self.mean = position_mean(ref, real)[0]
        # the mean over every real token (for outputs of another length): [*ref.shape[2:]]
        self._token_mean = None if real is None else ref[real.to(ref.device)].mean(0)

    def values(self, output: Tensor) -> Tensor:
        if self.mean.dim() == output.dim() - 1 and self.mean.shape != output.shape[1:]:
            dim = self.layout(output).dim - 1  # the unit dimension of one sample
            if self.mean.shape[dim] == output.shape[dim + 1]:
                if self._token_mean is not None and dim > 0:  # units past the positions: real tokens only
                    per_unit = self._token_mean.movedim(dim - 1, 0).reshape(self.mean.shape[dim], -1).mean(1)
                else:
                    per_unit = self.mean.movedim(dim, 0).flatten(1).mean(1)
                return _per_unit(per_unit, output, "reference", self)
        return _per_unit(self.mean, output, "reference", self)


class Resample(Intervention):
    """do(h_u := h_u(x')) with x' drawn at random from ``reference`` activations ``[M, ...]`` (the
    module's outputs on reference data, e.g. from :func:`capture`), one draw per row.

    The draws come from ``generator`` (default: a private one seeded with 0; the global RNG is never
    used), which advances with every call: the same ``Resample`` object gives other draws on its
    next use. For repeatable numbers, build a new one with a freshly seeded generator. In
    :func:`~lightning_causal.causal.effects.unit_effects.unit_effects` a layer that runs several
    times per pass (weight-tied depth) gets each row's donor at every call, and the numbers do not
    depend on ``max_batch_size``; :func:`intervene` draws anew at each call of the module.

    Padded reference sequences: pass their ``attention_mask`` (``[M, T]``, 0 at padding) and a
    drawn sample's padded positions hold the reference's mean at that position over the samples
    real there (:func:`~lightning_causal.causal.engine.ablation.position_mean`), not its padded
    hidden state (never read by the model's output, and moved by the pad id): a row whose position
    is real would otherwise be set to it.

    Examples:
        >>> ref = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])  # 3 reference samples, 2 units
        >>> iv = Resample(ref, torch.Generator().manual_seed(0), units=1)
        >>> iv(torch.zeros(4, 2))
        tensor([[ 0., 30.],
                [ 0., 10.],
                [ 0., 30.],
                [ 0., 10.]])
        >>> again = Resample(ref, torch.Generator().manual_seed(0), units=1)
        >>> torch.equal(again(torch.zeros(4, 2)), torch.tensor([[0.0, 30.0], [0.0, 10.0], [0.0, 30.0], [0.0, 10.0]]))
        True
    """

    def __init__(
        self,
        reference: Tensor,
        generator: torch.Generator | None = None,
        units: Units = None,
        *, unit_dim: int | None = None, num_heads: int | None = None, attention_mask: Tensor | None = None,
    ) -> None:
        super().__init__(units, unit_dim=unit_dim, num_heads=num_heads)
        if not isinstance(reference, Tensor) or reference.dim() < 2 or reference.shape[0] == 0:
            raise ValueError("Expected argument `reference` to be a tensor of activations [M, U, ...] with M >= 1")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"Expected argument `generator` to be a torch.Generator but got {type(generator)}")
        ref = reference.detach()
        real = reference_mask(attention_mask, ref)
        if real is not None:  # padded positions: the mean of the samples real there
            shaped = real.to(ref.device).view(*real.shape, *[1] * (ref.dim() - 2))
            ref = torch.where(shaped, ref, position_mean(ref, real).to(ref.dtype))
        self.reference = ref
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def values(self, output: Tensor) -> Tensor:
        if self.reference.shape[1:] != output.shape[1:]:
            raise ValueError(
                f"Expected argument `reference` to be activations of shape [M, {', '.join(map(str, output.shape[1:]))}] "
                f"(the module's output without its first dimension) but got {list(self.reference.shape)}"
            )
        idx = torch.randint(self.reference.shape[0], (output.shape[0],), generator=self.generator)
        return self.reference[idx].to(device=output.device, dtype=output.dtype)


class Scale(Intervention):
    """do(h_u := factor * h_u).

    Examples:
        >>> Scale(3.0)(torch.ones(1, 2))
        tensor([[3., 3.]])
    """

    def __init__(self, factor: float, units: Units = None, *, unit_dim: int | None = None, num_heads: int | None = None) -> None:
        super().__init__(units, unit_dim=unit_dim, num_heads=num_heads)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor):
            raise ValueError(f"Expected argument `factor` to be a finite number but got {factor!r}")
        self.factor = float(factor)

    def values(self, output: Tensor) -> Tensor:
        return output * self.factor


def _check_sites(model: nn.Module, sites: Mapping[str, object], kind: type | tuple) -> dict[str, nn.Module]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")
    resolved = {}
    for name, value in sites.items():
        if not isinstance(value, kind):
            raise TypeError(f"Expected an Intervention for module {name!r} but got {type(value)}")
        resolved[name] = resolve_module(model, name)
    return resolved


def _warn_unreached(model: nn.Module, modules: Mapping[str, nn.Module], what: str) -> list:
    """Hooks that warn, once per site, after a forward pass of ``model`` in which a named module
    never ran (hooks on it do nothing: e.g. the ``out_proj`` of ``nn.MultiheadAttention``, whose
    weight the attention uses in functional code). Register them after the sites' own hooks."""
    ran: set[str] = set()
    warned: set[str] = set()

    def start(*_: object) -> None:
        ran.clear()

    def end(*_: object) -> None:
        for name in modules:
            if name not in ran and name not in warned:
                warned.add(name)
                warnings.warn(f"Module {name!r} did not run in the model's forward pass, so {what} on it had no effect "
                              "(a module whose weights the model uses in functional code, such as the out_proj of "
                              "torch.nn.MultiheadAttention, never runs; that out_proj's input, the heads, is the site "
                              "'<attention>.out_proj:input')", UserWarning, stacklevel=2)

    handles = [model.register_forward_pre_hook(start)]
    handles += [m.register_forward_hook(lambda *_, n=name: ran.add(n)) for name, m in modules.items()]
    return handles + [model.register_forward_hook(end)]


def _apply(iv: Intervention, value: object, name: str) -> Tensor:
    """``iv`` applied to ``value``, the output of module ``name``; an output without units (``[N]``)
    is refused naming the module, unless ``iv`` replaces outputs its own way (its own ``__call__``)."""
    if isinstance(value, Tensor) and value.dim() < 2 and type(iv).__call__ is Intervention.__call__:
        check_unit_dimension(name, value.shape)
    if isinstance(value, Tensor):
        check_not_quantized(name, value)  # a statically quantized model: torch's own error names no site
    return iv(value)


def _replacing_hook(model: nn.Module, name: str, iv: Intervention) -> Callable[..., object]:
    """The forward hook of :func:`intervene` at ``name``: the output replaced by ``iv``. At its first call, an
    intervention per head warns where its slices are parts of heads (:func:`check_head_width`: the width is known
    only from the output, e.g. a grouped-query ``v_proj`` holds fewer heads than the model has)."""
    num_heads = getattr(iv, "num_heads", None)
    checked = num_heads is None

    def hook(_m: nn.Module, _i: object, out: object) -> object:
        nonlocal checked
        value = module_output(out, name)
        if not checked and isinstance(value, Tensor):
            checked = True
            unit_dim = getattr(iv, "unit_dim", None)
            dim = -1 if unit_dim is None else unit_dim
            if -value.dim() <= dim < value.dim():
                check_head_width(model, name, num_heads, value.shape[dim])
        return replace_output(out, _apply(iv, value, name))

    return hook


@contextlib.contextmanager
def intervene(model: nn.Module, interventions: Mapping[str, Intervention]) -> Iterator[nn.Module]:
    """Apply interventions on named modules for the duration of the ``with`` block.

    Registers one forward hook per site that replaces the module's output; exactly those handles
    are removed on exit, also on exceptions and ``KeyboardInterrupt``. Other hooks are untouched.
    An intervention per head (``num_heads=``) is refused up front where slices of the output are no
    heads (an output projection, a ``torch.nn.MultiheadAttention``, a module holding an attention output
    projection such as a whole transformer layer, a fused query/key/value projection, a convolution
    without ``unit_dim``), and warns at the first pass where its slices are parts of heads (a grouped-query
    ``v_proj`` cut by the query-head count). A module whose output comes from a normalisation inside it
    is refused by the estimators, which inspect a pass, not here.

    Examples:
        >>> m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> with intervene(m, {"0": Zero()}):
        ...     m(torch.ones(1, 2))
        tensor([[0., 0.]], grad_fn=<ReluBackward0>)
        >>> len(m[0]._forward_hooks)
        0
    """
    if not isinstance(interventions, Mapping):
        raise TypeError(f"Expected argument `interventions` to be a mapping name -> Intervention but got {type(interventions)}")
    handles = []
    with input_sites(model, list(interventions)):  # "<module>:input" sites exist for the block
        modules = _check_sites(model, interventions, Intervention)
        check_eager_possible(model)
        try:
            for name, module in modules.items():
                intervention = interventions[name]
                check_heads(model, name, module, getattr(intervention, "unit_dim", None), getattr(intervention, "num_heads", None))
                handles.append(module.register_forward_hook(_replacing_hook(model, name, intervention)))
            handles += _warn_unreached(model, modules, "the intervention")
            with force_eager():
                yield model
        finally:
            for h in handles:
                h.remove()


@contextlib.contextmanager
def capture(model: nn.Module, names: Sequence[str], detach: bool = True) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of the named modules during the ``with`` block, as each module returned
    them: copies, which later in-place operations of the model (``ReLU(inplace=True)``) do not change.

    A module that runs several times in one forward pass (a shared encoder, a cell unrolled over
    time) keeps its last call's output, with a ``UserWarning``: an intervention built from it
    (``MeanOf``) is then applied at every call with the last call's statistics.

    With :func:`intervene` on the same module, hooks run in the order they were registered: ``capture``
    inside ``intervene``'s block records the intervened output, ``capture`` around it (entered first)
    the module's own output, before the intervention replaced it; what the model computes afterwards
    is the intervened run either way.

    Examples:
        >>> m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> with capture(m, ["0"]) as acts:
        ...     _ = m(torch.ones(4, 2))
        >>> acts["0"].shape
        torch.Size([4, 3])
        >>> with intervene(m, {"0": SetTo(5.0, units=[0])}), capture(m, ["0"]) as acts:
        ...     _ = m(torch.ones(4, 2))
        >>> acts["0"][0, 0].item()
        5.0
    """
    if isinstance(names, str):
        names = [names]
    store: dict[str, Tensor] = {}
    handles = []
    calls: dict[str, int] = {}  # per forward pass of the model
    warned: set[str] = set()

    def make_hook(name: str):
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            value = module_output(out, name)  # copied: a later in-place op (ReLU(inplace=True)) must not reach it
            store[name] = value.detach().clone() if detach else value.clone()
            calls[name] = calls.get(name, 0) + 1
            if calls[name] == 2 and name not in warned:
                warned.add(name)
                warnings.warn(f"Module {name!r} runs more than once per forward pass; capture keeps its last call's output",
                              UserWarning, stacklevel=2)

        return hook

    with input_sites(model, names):  # "<module>:input" sites exist for the block
        modules = {n: resolve_module(model, n) for n in names}
        check_eager_possible(model)
        try:
            handles.append(model.register_forward_pre_hook(lambda *_: calls.clear()))
            for name, module in modules.items():
                handles.append(module.register_forward_hook(make_hook(name)))
            handles += _warn_unreached(model, modules, "capture")
            with force_eager():
                yield store
        finally:
            for h in handles:
                h.remove()
