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
from collections.abc import Callable

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["ROUNDED_REACH", "ROUNDED_ROWS", "ROUNDING_ULPS", "rounded_size", "warn_rounding_effects"]

#: Effects at most this many machine epsilons of the largest explained output |f_t(x)| (or of the size of what the
#: forward rounds after the layer, :func:`rounded_size`, where larger) are rounding error, in every dtype: an SAE whose
#: error term cancels its latents gives under one epsilon (0.41-0.82: 1.9e-6 beside a float32 logit of 20; 0.63-0.69
#: of the rounded size on a residual stream whose coordinate of 30-300 the head's bias cancels). More would take real effects for rounding: in bfloat16 (eps 2^-7) 64 epsilons are half the largest output,
#: and a float32 regression whose outputs carry an offset (prices near 1e6) has real effects of a few units, 78
#: epsilons of its output, exact to 0.6%.
ROUNDING_ULPS = 4
#: Probe rows whose pass with gradients reads the size of what the forward rounds after the layer (:func:`rounded_size`).
ROUNDED_ROWS = 64
#: That size is read only where every effect is within this many times the output's rounding bound (1024 epsilons of
#: the output; a layer of real effects, a float32 one's above 1.2e-4 of the output, costs no pass more): a residual
#: coordinate of 300 beside outputs of 17 gives 58 epsilons, of 3000 none (its effects round to exactly 0).
ROUNDED_REACH = 2**8


def warn_rounding_effects(layer: str, effects: Tensor, explained: Tensor,
                          rounded: Callable[[], float] | None = None) -> bool:
    """Warn (``UserWarning``) where the exact effects of ``layer``'s units are all rounding error of the forward,
    ``0 < max |e| ≤ ROUNDING_ULPS · eps · max(max |f_t(x)|, r)``; returns whether it warned. ``r`` (``rounded()``,
    asked only where the output's size alone does not warn and the effects are within ``ROUNDED_REACH`` times that
    bound): the size of what the forward rounds after the layer, as it reaches the output (:func:`rounded_size`). The
    rounding of ``rec + (h − rec)`` scales with ``|h|``, not with the output: a residual stream holding one large
    coordinate (LLMs' massive activations, ``h_0`` of 30-300 beside outputs of 17) that the head's bias cancels gives
    rounding effects of 7-58 epsilons of the output.

    Args:
        layer: the layer's name, as the warning names it.
        effects: the exact effects ``[N, U]``.
        explained: the clean explained outputs ``f_t(x)`` ``[N]``.
        rounded: ``() -> r``, or ``None``: the output's size alone.

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
    if largest == 0.0:
        return False
    rounded_used = False
    if largest > ROUNDING_ULPS * info.eps * scale:
        reach = largest <= ROUNDED_REACH * ROUNDING_ULPS * info.eps * scale  # else real effects: no pass of gradients
        size = rounded() if rounded is not None and reach else 0.0
        if largest > ROUNDING_ULPS * info.eps * size:
            return False
        scale, rounded_used = size, True
    precision = "" if info.bits > 16 else (
        f" In {str(effects.dtype).removeprefix('torch.')} an output rounds to {info.eps:.2g} of itself, so a layer "
        "that cancels nothing can give effects of a few such steps too: an audit of the model in float32 "
        "(`model.float()`) tells the two apart.")
    warnings.warn(
        f"Every unit of {layer!r} changes the explained output only by float rounding (largest |effect| "
        f"{largest:.2g} beside outputs up to {float(explained.detach().abs().max()) if explained.numel() else 0.0:.3g}"
        + (f" and values rounded after the layer whose size reaches the output as {scale:.3g}" if rounded_used else "")
        + "): its interventions run, but nothing of them reaches the "
        "output, so the units' ranking is a ranking of rounding error. A later part of the model cancels what the "
        "layer sets: a sparse autoencoder's error term computed from the latents it sets (`rec + (h - rec).detach()` "
        "with `rec = decoder(latents)` returns `h` whatever the latents hold) is the usual cause; compute the error "
        "from the clean latents before the latents' site (`error = h - decoder(z)`, then `decoder(site(z)) + error`: "
        "docs/your_model.md, Sparse autoencoders)" + precision,
        UserWarning, stacklevel=outside_package())
    return True


def rounded_size(model: nn.Module, run: Callable[[Callable[[Tensor], Tensor]], Tensor]) -> float:
    """The size of what the forward rounds after a layer, as it reaches the explained output: the largest, over the
    rows, of ``Σ_i |v_i · ∂f_t/∂v_i|`` over the tensors ``v`` that the modules after the layer read (a first-order
    bound of the change of ``f_t`` when each ``v_i`` is rounded to ``eps · |v_i|``); 0 where it cannot be read (a pass
    that fails with gradients, no module read after the layer).

    Args:
        model: the model whose modules' inputs are read (forward pre-hooks, removed after, also on errors).
        run: ``edit -> f_t``: the explained outputs ``[R]`` of a pass whose layer output is ``edit(h)``.

    Examples:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Identity(), nn.Linear(2, 1))
        >>> with torch.no_grad():
        ...     _ = net[2].weight.copy_(torch.tensor([[3.0, -1.0]]))
        >>> h = torch.tensor([[100.0, 2.0]])
        >>> rounded_size(net, lambda edit: net[2](edit(h))[:, 0])  # |100 · 3| + |2 · -1|
        302.0
    """
    read: list[Tensor] = []

    def enter(_m: nn.Module, args: tuple) -> None:
        read.extend(a for a in args if isinstance(a, Tensor) and a.requires_grad and a.is_floating_point())

    handles = [m.register_forward_pre_hook(enter) for m in model.modules() if not isinstance(m, torch.jit.ScriptModule)]
    try:
        with torch.enable_grad():
            leaf: list[Tensor] = []

            def edit(h: Tensor) -> Tensor:
                leaf.append(torch.zeros_like(h, requires_grad=True))
                return h + leaf[-1]

            f = run(edit)
            for h in handles:
                h.remove()
            if not f.requires_grad or not read:
                return 0.0
            grads = torch.autograd.grad(f.sum(), read, allow_unused=True)
        size = 0.0
        for v, g in zip(read, grads):
            if g is not None and v.dim():
                moved = (v.detach() * g).abs()
                size = max(size, float(moved.flatten(1).sum(1).max() if moved.dim() > 1 else moved.max()))
        return size
    except Exception:  # a model that does not differentiate after the layer: the output's size alone
        return 0.0
    finally:
        for h in handles:
            h.remove()
