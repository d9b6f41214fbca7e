"""Quantized modules (``torch.ao.nn.quantized``), which the estimators must know of.

A dynamically quantized layer (``torch.ao.quantization.quantize_dynamic``: ``Linear``, ``LSTM``,
``GRU`` and their cells) quantizes its input on every call with one scale for the whole tensor,
taken from its range over every row of the batch. A sample's output then depends on the rows it
runs with: run alone, with the other probe samples or with the rows of an intervention, it differs
by up to a quantization step of the layer's input. The estimators run intervened rows in other
batches than the clean pass (that is how they batch), so an effect would hold that noise beside the
intervention's: on a ReLU MLP of 16 units, zeroing a unit that was already 0 — no change at all —
gave effects up to a fifth of the mean ``|effect|``, and on a 31-32-32-2 MLP of breast-cancer data
effects off a hand loop by 0.53 where the mean ``|effect|`` was 0.71, and the checks that samples run
alone give their outputs in the batch would see it by chance only, blaming control flow on a batch
statistic. :func:`refuse_dynamic_quantized` refuses it before any pass, naming the layers and the ways out (int8 ones: those of float16 weights,
``quantize_dynamic(..., dtype=torch.float16)``, cast their input to float16 and treat rows apart). Quantized layers (dynamic or static)
have no gradient either: the first-order estimates name them (:func:`quantized_layers`) when no
gradient reaches a layer. A statically quantized model (``torch.ao.quantization.prepare``/``convert``)
passes quantized tensors between its layers: torch has no ``where``, ``zero_`` or arithmetic on them,
so a site there is refused, naming it (:func:`check_not_quantized`), before torch's ``Could not run
'aten::where.self' ... 'QuantizedCPU'``; its scales are fixed, so its rows do not depend on their batch.

The checks read the modules' classes only (``type(m).__module__``): nothing of ``torch.ao`` is imported.

Examples:
    >>> from torch import nn
    >>> dynamic_quantized(nn.Sequential(nn.Linear(2, 2)))
    []
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.eager import named_modules

__all__ = ["check_not_quantized", "dynamic_quantized", "no_gradient_cause", "quantized_layers", "refuse_dynamic_quantized"]

def _quantized(module: nn.Module) -> bool:
    """A module of ``torch.ao.nn``'s quantized kinds (not a reference module, which computes in float,
    nor the packed weights a quantized layer holds: a Linear's ``...PackedParams``, a dynamic RNN's
    ``PackedParameter`` modules, ``lstm._all_weight_values.0``)."""
    path, name = type(module).__module__, type(module).__name__
    return (path.startswith("torch.ao.nn.") and ".quantized" in path and ".reference" not in path
            and not name.endswith("PackedParams") and name != "PackedParameter")


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
    """Names of the dynamically quantized modules of ``model`` (``quantize_dynamic``) of int8 weights: each
    quantizes its input with a scale computed over the whole batch, so a row's output depends on the other rows.
    Those of ``dtype=torch.float16`` (float16 weights, the input cast, not quantized) treat rows apart: left out."""
    return [name for name, m in named_modules(model).items()
            if _quantized(m) and ".quantized.dynamic" in type(m).__module__ and _weight_dtype(m) != torch.float16]


def _weight_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype a dynamically quantized module's weights are packed in: ``torch.qint8`` or ``torch.float16``
    (a Linear's ``_packed_params.dtype``, an RNN's ``dtype``, an RNN cell's ``weight_dtype``; ``None`` where it
    holds none of them)."""
    packed = getattr(module, "_packed_params", None)
    if packed is not None:
        dtype = getattr(packed, "dtype", None)
    else:
        dtype = getattr(module, "dtype", None)
        dtype = dtype if isinstance(dtype, torch.dtype) else getattr(module, "weight_dtype", None)
    return dtype if isinstance(dtype, torch.dtype) else None


#: the ways out of a dynamically quantized model, also in docs/your_model.md's recipe
DYNAMIC_QUANTIZED_FIX = (
    "audit the float model that was quantized (quantize_dynamic returns a copy: keep the float one), and to see what "
    "the int8 weights changed, a float copy holding them dequantized (each layer's `weight().dequantize()` and "
    "`bias()` in an nn.Linear), or the deployed model as it serves one sample at a time, a float copy whose layers "
    "quantize each sample's input with its own scale (docs/your_model.md's recipe, `dequantized`); or a statically "
    "quantized model (prepare, calibrate, convert: fixed scales, whose rows do not depend on their batch)")


def refuse_dynamic_quantized(model: nn.Module, error: type[Exception] = ValueError) -> None:
    """Refuse ``model`` where it holds dynamically quantized layers (``quantize_dynamic``): each quantizes its input
    with one scale taken over every row of the batch, so a sample's output depends on the rows it runs with, and
    every estimator, which runs intervened rows in other batches than the clean pass, would report that noise as
    effects (see the module docstring). ``error`` naming up to five layers and :data:`DYNAMIC_QUANTIZED_FIX`,
    before any pass (:class:`~.forward.Forward`'s constructor).

    Args:
        model: the model.
        error: the exception raised (``MisconfigurationException`` where Lightning-facing code refuses: the callback's
            set-up, :class:`~lightning_causal.repair.CausalRepairModule`).

    Examples:
        >>> refuse_dynamic_quantized(nn.Sequential(nn.Linear(2, 2)))  # a float model passes
    """
    names = dynamic_quantized(model)
    if not names:
        return
    shown = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    raise error(
        f"Expected a model whose samples' outputs do not depend on their batch, but it holds dynamically quantized "
        f"layers ({shown}; torch.ao.quantization.quantize_dynamic): each quantizes its input with one scale taken over "
        "every row of the batch, so a sample's output depends on the rows it runs with, and the effects, which run "
        "intervened rows in other batches than the clean pass, would hold that quantization noise (an intervention "
        f"that changes nothing shows an effect); these layers have no gradient either. To explain it, {DYNAMIC_QUANTIZED_FIX}")


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
