"""Quantized modules (``torch.ao.nn.quantized``), which the estimators must know of.

A dynamically quantized layer (``torch.ao.quantization.quantize_dynamic``: ``Linear``, ``LSTM``,
``GRU`` and their cells) quantizes its input on every call with one scale for the whole tensor,
taken from its range over every row of the batch. A sample's output then depends on the rows it
runs with: run alone, with the other probe samples or with the rows of an intervention, it differs
by up to a quantization step of the layer's input. The estimators run intervened rows in other
batches than the clean pass (that is how they batch), so an effect holds that noise beside the
intervention's: on a ReLU MLP of 16 units, zeroing a unit that was already 0 — no change at all —
gave effects up to a fifth of the mean ``|effect|``. :func:`warn_dynamic_quantized` says so, naming
the layers. Quantized layers (dynamic or static) have no gradient either: the first-order estimates
name them (:func:`quantized_layers`) when no gradient reaches a layer. A statically quantized
model (``torch.ao.quantization.prepare``/``convert``) passes quantized tensors between its layers:
torch has no ``where``, ``zero_`` or arithmetic on them, so a site there is refused, naming it
(:func:`check_not_quantized`), before torch's ``Could not run 'aten::where.self' ... 'QuantizedCPU'``.

The checks read the modules' classes only (``type(m).__module__``): nothing of ``torch.ao`` is imported.

Examples:
    >>> from torch import nn
    >>> dynamic_quantized(nn.Sequential(nn.Linear(2, 2)))
    []
"""

from __future__ import annotations

import warnings
import weakref

from torch import Tensor, nn

from lightning_causal.causal.engine.eager import named_modules
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["check_not_quantized", "dynamic_quantized", "no_gradient_cause", "quantized_layers", "warn_dynamic_quantized"]

_warned: weakref.WeakSet[nn.Module] = weakref.WeakSet()


def _quantized(module: nn.Module) -> bool:
    """A module of ``torch.ao.nn``'s quantized kinds (not a reference module, which computes in float,
    nor the packed weights a quantized layer holds)."""
    path = type(module).__module__
    return (path.startswith("torch.ao.nn.") and ".quantized" in path and ".reference" not in path
            and not type(module).__name__.endswith("PackedParams"))


def quantized_layers(model: nn.Module) -> list[str]:
    """Names of the quantized modules of ``model`` (``quantize_dynamic`` or static quantization:
    ``torch.ao.nn.quantized`` and its fused ``intrinsic`` kinds), which have no gradient."""
    return [name for name, m in named_modules(model).items() if _quantized(m)]


def no_gradient_cause(model: nn.Module, after: str = ": quantize_dynamic or static quantization") -> str:
    """Where a missing gradient comes from, for the first-order estimates' and the counterfactual
    search's refusals: ``"quantized layers, which have no gradient ('fc', ...<after>)"`` naming up
    to five of :func:`quantized_layers`, or ``""`` for a model without any.

    Examples:
        >>> no_gradient_cause(nn.Sequential(nn.Linear(2, 2)))
        ''
    """
    names = quantized_layers(model)
    if not names:
        return ""
    return (f"quantized layers, which have no gradient ({', '.join(map(repr, names[:5]))}"
            f"{', ...' if len(names) > 5 else ''}{after})")


def dynamic_quantized(model: nn.Module) -> list[str]:
    """Names of the dynamically quantized modules of ``model`` (``quantize_dynamic``): each quantizes
    its input with a scale computed over the whole batch, so a row's output depends on the other rows."""
    return [name for name, m in named_modules(model).items()
            if _quantized(m) and ".quantized.dynamic" in type(m).__module__]


def warn_dynamic_quantized(model: nn.Module, stacklevel: int | None = None) -> None:
    """``UserWarning``, once per model, when ``model`` holds dynamically quantized layers: the effects
    computed on it hold the change of their activation scales between batches besides the
    intervention's (see the module docstring). ``stacklevel``: ``None`` points the warning at the
    first caller outside this package (:class:`~.forward.Forward` is built at various depths)."""
    try:
        if model in _warned:
            return
    except TypeError:  # a module that cannot be weakly referenced: warn every time
        pass
    names = dynamic_quantized(model)
    if not names:
        return
    try:
        _warned.add(model)
    except TypeError:
        pass
    shown = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    warnings.warn(
        f"The model holds dynamically quantized layers ({shown}; torch.ao.quantization.quantize_dynamic): each quantizes "
        "its input with one scale taken over every row of the batch, so a sample's output depends on the rows it runs "
        "with. Intervened rows run in other batches than the clean pass, so effects, curves and maps hold that "
        "quantization noise beside the intervention's effect (an intervention that changes nothing can show an effect). "
        "Audit the float model that was quantized (quantize_dynamic returns a copy), or a statically quantized one "
        "(calibrated, fixed scales)",
        UserWarning, stacklevel=outside_package() if stacklevel is None else stacklevel)


def check_not_quantized(name: str, value: Tensor) -> None:
    """Refuse a site whose output ``value`` is a quantized tensor (a statically quantized model):
    no intervention can be applied to it (``TypeError`` naming the site and the way out).

    Examples:
        >>> import torch
        >>> q = torch.quantize_per_tensor(torch.zeros(1, 2), 0.1, 0, torch.quint8)
        >>> check_not_quantized("fc", q)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: Expected the output of 'fc' to be a float tensor but it is quantized (torch.quint8, ...
    """
    if not value.is_quantized:
        return
    raise TypeError(
        f"Expected the output of {name!r} to be a float tensor but it is quantized ({value.dtype}, a statically quantized "
        "model: torch.ao.quantization.convert): torch has no arithmetic on quantized tensors, so no unit of it can be set, "
        "scaled or replaced. Intervene on the float model before quantization (prepare/convert return or modify the "
        "model: keep a copy), or at a float site outside the quantized region (a DeQuantStub's output)")
