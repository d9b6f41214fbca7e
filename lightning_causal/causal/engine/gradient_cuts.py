"""Why no gradient (or a gradient of 0) reaches a place, and what works instead: the words the first-order
estimates' and the counterfactual search's refusals and warnings use, written once here.

- :func:`gradient_cut_causes`: what cuts the gradient on the way from the output back (the model's quantized
  layers, named, a ``.detach()`` or ``torch.no_grad()``, a step such as ``(h > 0).float()``, argmax or argmin,
  ``one_hot`` or an integer cast);
- :data:`FLAT_STEPS`: what makes a gradient that flows 0 at every sample (``torch.round``, ``floor``, ``sign``);
- :func:`not_float_input`: why an input of an integer, bool or complex dtype has no gradient and the ways that work
  for it (token ids named for ``int32``/``int64`` only: ``int16`` and ``int8`` inputs are audio samples far more
  often);
- :func:`float_reading`: how a model reads integers of a dtype as floats, scaled by the dtype's own range
  (``x.float() / 128`` of ``int8`` samples, ``/ 255`` of ``uint8`` pixels, ``/ 32768`` of ``int16`` samples).

Examples:
    >>> from torch import nn
    >>> gradient_cut_causes(nn.Linear(2, 2))
    'a .detach() or torch.no_grad(), or a step such as (h > 0).float(), argmax or argmin, one_hot or an integer cast'
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal.engine.quantized import no_gradient_cause
from lightning_causal.causal.engine.token_ids import INDEX_DTYPES

__all__ = ["CUT_STEPS", "DETACHED", "FLAT_STEPS", "float_reading", "gradient_cut_causes", "not_float_input"]

#: code in a forward that stops autograd while the values flow on
DETACHED = "a .detach() or torch.no_grad()"
#: operations whose result has no gradient at all
CUT_STEPS = "a step such as (h > 0).float(), argmax or argmin, one_hot or an integer cast"
#: operations whose gradient is 0 wherever it is defined (the output still moves with their input)
FLAT_STEPS = "a piecewise-constant step such as torch.round, floor or sign"


def gradient_cut_causes(model: nn.Module, *, quantized_after: str = ": quantize_dynamic or static quantization",
                        more: str = "") -> str:
    """What cuts the gradient in ``model``'s forward, for a refusal's parentheses: its quantized layers, named (up to
    five, :func:`~lightning_causal.causal.engine.quantized.no_gradient_cause`, followed by ``quantized_after``), where
    it holds any, then :data:`DETACHED` and :data:`CUT_STEPS`, then ``more`` (a cause of the caller's own).

    Args:
        model: the model whose forward cuts the gradient.
        quantized_after: what follows the quantized layers' names inside their parentheses.
        more: a further cause, joined with ``", or "`` (``""``: none).
    """
    causes = [no_gradient_cause(model, after=quantized_after), DETACHED, CUT_STEPS, more]
    return ", or ".join(c for c in causes if c)


def float_reading(dtype: torch.dtype) -> str:
    """How a model that casts integer inputs of ``dtype`` inside reads them as floats, scaled by the dtype's own range,
    for the ways out of the refusals of such inputs: ``x.float() / 255`` of ``uint8`` pixels, ``x.float() / 2^(b-1)``
    of signed ``b``-bit samples (PCM audio: ``int8`` / 128, ``int16`` / 32768, ``int32`` / 2147483648, each mapping
    the dtype's range onto ``[-1, 1)``), ``x.float() / max`` of other unsigned integers (``uint16`` / 65535), and
    ``x.float()`` alone of ``bool`` masks and ``int64`` values.

    Args:
        dtype: the input's integer or bool dtype.

    Examples:
        >>> float_reading(torch.int8), float_reading(torch.int16)
        ('x.float() / 128 of int8 samples', 'x.float() / 32768 of int16 samples')
        >>> float_reading(torch.uint8), float_reading(torch.bool)
        ('x.float() / 255 of uint8 pixels', 'x.float() of bool masks')
    """
    name = str(dtype).removeprefix("torch.")
    if dtype == torch.bool:
        return "x.float() of bool masks"
    if dtype == torch.uint8:
        return "x.float() / 255 of uint8 pixels"
    if dtype == torch.int64 or dtype.is_floating_point or dtype.is_complex:
        return f"x.float() of {name} values"
    info = torch.iinfo(dtype)
    return f"x.float() / {-info.min} of {name} samples" if info.min < 0 else f"x.float() / {info.max} of {name} values"


def not_float_input(dtype: torch.dtype, exact: str = "method='exact'") -> str:
    """Why an input of ``dtype`` (not floating point) has no gradient, and the ways that work, for a refusal's
    parentheses; ``exact``: the caller's way that needs no gradient.

    Args:
        dtype: the input's dtype (integer, bool or complex).
        exact: what intervenes on the input instead (``"method='exact'"``).

    Examples:
        >>> print(not_float_input(torch.int16))  # doctest: +ELLIPSIS
        integer inputs have no gradient: a model that casts them in its first line ... or use method='exact'
    """
    if dtype.is_complex:
        return (f"complex inputs: pass torch.view_as_real(z) to a model that rebuilds torch.view_as_complex inside, "
                f"or use {exact}")
    reading = float_reading(dtype)
    if dtype in (torch.uint8, torch.bool):
        return ("uint8 pixels or bool masks that the model casts inside: pass inputs.float() (a model that casts inside, "
                f"{reading}, reads floats the same) or use {exact}")
    casts = f"x.float(), {reading}" if "/" in reading else reading  # int64's reading is x.float() alone
    ways = (f"integer inputs have no gradient: a model that casts them in its first line ({casts}) "
            "reads float samples the same, so pass inputs.float()")
    if dtype in INDEX_DTYPES:
        ways += ("; token ids have no values between tokens: work at the embedding layer's output instead ("
                 "unit_effects(model, ids, '<embedding layer>', method='attribution') estimates there)")
    return f"{ways}; or use {exact}"
