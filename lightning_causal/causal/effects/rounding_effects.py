"""Unit effects that are rounding error: a layer whose interventions run but reach the output by nothing else.

Exact unit effects are differences of two forward passes, ``f_t(x) − f_t(x | do(h_u := a))``. Where every one of
them is within a few units of float rounding of the explained outputs, yet not all exactly 0 (the interventions ran
and moved something), the layer's units change nothing the output reads: the ranking of its units is a ranking of
rounding noise. A model that subtracts again what the layer adds does that, and a sparse autoencoder spliced into a
model does it where its error term is computed from the latents it sets: ``rec + (h − rec).detach()`` with
``rec = decoder(latents)`` returns ``h`` whatever the latents hold. :func:`warn_rounding_effects` says so.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["ROUNDING_ULPS", "warn_rounding_effects"]

#: Effects at most this many machine epsilons of the largest explained output |f_t(x)| are rounding error, in every
#: dtype: an SAE whose error term cancels its latents gives under one epsilon (0.41-0.82: 1.9e-6 beside a float32 logit
#: of 20). More would take real effects for rounding: in bfloat16 (eps 2^-7) 64 epsilons are half the largest output,
#: and a float32 regression whose outputs carry an offset (prices near 1e6) has real effects of a few units, 78
#: epsilons of its output, exact to 0.6%.
ROUNDING_ULPS = 4


def warn_rounding_effects(layer: str, effects: Tensor, explained: Tensor) -> bool:
    """Warn (``UserWarning``) where the exact effects of ``layer``'s units are all rounding error of the explained
    outputs, ``0 < max |e| ≤ ROUNDING_ULPS · eps · max |f_t(x)|``; returns whether it warned.

    Args:
        layer: the layer's name, as the warning names it.
        effects: the exact effects ``[N, U]``.
        explained: the clean explained outputs ``f_t(x)`` ``[N]``.

    Examples:
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     warn_rounding_effects("sae.latents", torch.tensor([[1e-7, 0.0]]), torch.tensor([12.0]))
        True
        >>> warn_rounding_effects("fc", torch.tensor([[0.5, 0.0]]), torch.tensor([12.0]))
        False
        >>> warn_rounding_effects("fc", torch.tensor([[0.5, 0.0]], dtype=torch.bfloat16), torch.tensor([12.0]))
        False
    """
    if not effects.is_floating_point() or effects.numel() == 0 or not bool(torch.isfinite(effects).all()):
        return False
    largest = float(effects.abs().max())
    scale = float(explained.detach().abs().max()) if explained.numel() else 0.0
    info = torch.finfo(effects.dtype)
    if largest == 0.0 or largest > ROUNDING_ULPS * info.eps * scale:
        return False
    precision = "" if info.bits > 16 else (
        f" In {str(effects.dtype).removeprefix('torch.')} an output rounds to {info.eps:.2g} of itself, so a layer "
        "that cancels nothing can give effects of a few such steps too: an audit of the model in float32 "
        "(`model.float()`) tells the two apart.")
    warnings.warn(
        f"Every unit of {layer!r} changes the explained output only by float rounding (largest |effect| "
        f"{largest:.2g} beside outputs up to {scale:.3g}): its interventions run, but nothing of them reaches the "
        "output, so the units' ranking is a ranking of rounding error. A later part of the model cancels what the "
        "layer sets: a sparse autoencoder's error term computed from the latents it sets (`rec + (h - rec).detach()` "
        "with `rec = decoder(latents)` returns `h` whatever the latents hold) is the usual cause; compute the error "
        "from the clean latents before the latents' site (`error = h - decoder(z)`, then `decoder(site(z)) + error`: "
        "docs/your_model.md, Sparse autoencoders)" + precision,
        UserWarning, stacklevel=outside_package())
    return True
