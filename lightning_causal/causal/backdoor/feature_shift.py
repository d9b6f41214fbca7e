"""Contrastive trigger detection: Neural Cleanse on the difference between a classifier and a
feature-shifted copy of it.

A backdoor trigger moves the backdoored model to its target; Feature Shift Tuning (FST, Min et
al. 2023) removes most of that response from a copy of the model while keeping its clean
behaviour, so the trigger does not move the copy. A class's natural feature moves both. Reversing
triggers on :class:`Contrast` (``log p_f − log p_shifted``) therefore finds the triggers the copy
does not share, including those of weakly learned backdoors whose plain reversed trigger is no
smaller than a clean class's. Pure PyTorch: nothing here knows of Lightning.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

from lightning_causal._optimizers import adam_eps
from lightning_causal.causal.engine.checks import check_float, check_int, check_type
from lightning_causal.causal.engine.frozen import copied, freeze
from lightning_causal.causal.engine.state import audit_mode, observers_off, rng_preserved

__all__ = ["MAX_CONTRAST_RATIO", "Contrast", "feature_shifted", "output_layer"]

#: Flag bound on :class:`Contrast`'s compact score (:func:`~.mask_statistics.compact_ratio`), chosen on
#: the second development set of ``benchmarks/backdoor_protocol.py`` (no clean fold model flagged).
MAX_CONTRAST_RATIO = 0.45


def output_layer(model: nn.Module, num_classes: int) -> tuple[str, nn.Linear]:
    """The name and module of ``model``'s output layer: the last ``nn.Linear`` (in registration
    order) with ``num_classes`` outputs.

    Examples:
        >>> output_layer(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), 3)[0]
        '2'
    """
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not found:
        raise ValueError(f"Expected `model` to hold an nn.Linear output layer with {num_classes} outputs (its weight is "
                         "what feature shift tuning re-initialises) but found none")
    name, head = found[-1]
    for tensor in ("weight", "bias"):  # written through its parametrization (_write): each needs a right_inverse
        kinds = [type(p).__name__ for p in head.parametrizations[tensor] if not hasattr(p, "right_inverse")] \
            if parametrize.is_parametrized(head, tensor) else []
        if kinds:
            raise ValueError(
                f"Expected the output layer '{name}' to take a new {tensor} (feature shift tuning re-initialises it) but "
                f"its parametrization {', '.join(kinds)} has no `right_inverse` (a LoRA written as a parametrization, "
                f"minLoRA's): give it one, or pass `contrast=False` to BackdoorSuppressionTerm (the default, "
                f"`contrast=None`, leaves the contrast out for such a model)")
    return name, head


def feature_shifted(model: nn.Module, x: Tensor, num_classes: int, *, epochs: int = 20, alpha: float = 0.2,
                    lr: float = 4e-3, batch_size: int = 32, generator: torch.Generator | None = None) -> nn.Module:
    """A frozen copy of ``model`` after Feature Shift Tuning on ``x`` (Min et al. 2023).

    The copy's output layer (:func:`output_layer`) is re-initialised (uniform in ``±1/√fan_in``,
    scaled to the old weight's norm), then every parameter is trained by Adam on

    .. math:: CE\\big(f(x), \\hat y\\big) + α \\langle w, w_0 \\rangle, \\qquad
              \\lVert w \\rVert \\leftarrow \\lVert w_0 \\rVert \\text{ after each step,}

    with ``ŷ`` ``model``'s own predictions on ``x`` (clean inputs: its clean labels) and ``w_0``
    the output weight before. Deterministic for a given ``generator`` (default: seed 0); the global
    RNG states, the CPU's and every CUDA device's, are restored (dropout in the copy draws from them). ``model`` is not changed.
    A quantization-aware model's copy (``prepare_qat``) tunes with its fake-quant observers off: it quantizes with the
    scales ``model`` holds, called directly as inside ``BackdoorSuppressionTerm`` (which calls it in ``audit_mode``).

    Args:
        model: a classifier ``x -> [N, num_classes]`` logits.
        x: clean inputs ``[N, ...]``.
        num_classes: the number of classes.
        epochs: passes over ``x``.
        alpha: ``α``, the weight of the pull away from ``w_0``.
        lr: Adam's learning rate.
        batch_size: rows per step (and per pass of the predictions ``ŷ``).
        generator: private random generator (initialisation and batch order).

    Examples:
        >>> torch.manual_seed(0) is not None
        True
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> shifted = feature_shifted(model, torch.randn(16, 4), 3, epochs=2)
        >>> bool(torch.allclose(shifted[2].weight.norm(), model[2].weight.norm()))
        True
    """
    check_type("model", model, nn.Module)
    check_type("x", x, Tensor)
    check_int("num_classes", num_classes, minimum=2)
    check_int("epochs", epochs, minimum=1)
    check_float("alpha", alpha, minimum=0.0)
    check_float("lr", lr, minimum=0.0, open_min=True)
    check_int("batch_size", batch_size, minimum=1)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    with audit_mode(model):  # eval, no_grad; every mode and buffer put back (a QAT model's observers off: its scales held)
        labels = torch.cat([model(rows).argmax(1) for rows in x.split(batch_size)])  # in batches, as the tuning runs
    shifted = copied(model)  # a pruned layer's weight (a grad_fn) detached
    observers_off(shifted)  # a QAT copy tunes on the scales `model` holds, as inside the term (under audit_mode)
    _, head = output_layer(shifted, num_classes)
    w0 = head.weight.detach().clone()
    with torch.no_grad():
        bound = 1.0 / math.sqrt(head.in_features)
        # drawn on the CPU, where the generator is, then copied: an in-place draw on a CUDA weight refuses a CPU generator
        _write(head, "weight", _uniform(w0, bound, g))
        _renormed(head, w0)
        if head.bias is not None:
            _write(head, "bias", _uniform(head.bias, bound, g))
    for p in shifted.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(shifted.parameters(), lr=lr, eps=adam_eps(shifted.parameters()))  # float16 copy: 1e-4
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    with rng_preserved(), torch.enable_grad():  # every CUDA device too: torch.manual_seed below seeds them all
        torch.manual_seed(seed)
        shifted.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=g).split(batch_size):
                loss = F.cross_entropy(shifted(x[idx]), labels[idx]) + alpha * (head.weight * w0).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    _renormed(head, w0)
    return freeze(shifted)  # a QAT copy quantizes with the scales `model` held (its observers were off throughout)


def _write(layer: nn.Module, name: str, value: Tensor) -> None:
    """Sets ``layer``'s tensor ``name`` to ``value`` where its forward reads it from: the parameter; a pruned one's
    ``<name>_orig`` (``torch.nn.utils.prune``: the forward multiplies it by ``<name>_mask``, which keeps the pruned
    entries 0); a parametrized one through its parametrization (``torch.nn.utils.parametrize``: ``right_inverse``);
    under the older hooks, ``spectral_norm``'s ``<name>_orig`` (which it divides by its largest singular value) and
    ``weight_norm``'s ``<name>_v`` and ``<name>_g`` (``value`` exactly). Written into ``layer.<name>`` itself, a tensor
    such a forward computes again, the value was lost: the tuning started from the weights it was to replace."""
    norm = _hook(layer, name, WeightNorm)
    if parametrize.is_parametrized(layer, name):
        setattr(layer, name, value)
    elif _pruned(layer, name) or _hook(layer, name, SpectralNorm) is not None:
        getattr(layer, name + "_orig").copy_(value)
    elif norm is not None:
        getattr(layer, name + "_v").copy_(value)
        getattr(layer, name + "_g").copy_(torch.norm_except_dim(value, 2, norm.dim))
    else:
        getattr(layer, name).copy_(value)


def _forward_weight(layer: nn.Module) -> Tensor:
    """``layer``'s weight as its forward computes it now (:func:`_write`'s cases): not the attribute the older hooks and
    pruning set at the last pass, one step behind after ``opt.step()``. The older ``spectral_norm`` iterates its ``u``,
    ``v`` once, as a training pass does: those of the weights before could give a negative ``σ = uᵀWv`` for a new
    draw, which flipped its sign."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.weight
    if _pruned(layer, "weight"):
        return layer.weight_orig * layer.weight_mask
    spectral, norm = _hook(layer, "weight", SpectralNorm), _hook(layer, "weight", WeightNorm)
    if spectral is not None:
        return spectral.compute_weight(layer, do_power_iteration=True)  # u, v of the weights written (a sign else)
    return norm.compute_weight(layer) if norm is not None else layer.weight


def _pruned(layer: nn.Module, name: str) -> bool:
    return isinstance(getattr(layer, name + "_orig", None), nn.Parameter) and isinstance(getattr(layer, name + "_mask", None), Tensor)


def _hook(layer: nn.Module, name: str, kind: type) -> Any:
    """``layer``'s forward pre-hook of ``kind`` (the older ``SpectralNorm`` / ``WeightNorm``) computing ``name``, or ``None``."""
    return next((h for h in layer._forward_pre_hooks.values() if isinstance(h, kind) and h.name == name), None)


def _renormed(head: nn.Module, w0: Tensor) -> None:
    """Scales ``head``'s weight, as its forward computes it (:func:`_forward_weight`), to the norm of ``w0``
    (:func:`_write`)."""
    weight = _forward_weight(head)
    _write(head, "weight", weight * (w0.norm() / weight.norm().clamp_min(1e-12)))


def _uniform(like: Tensor, bound: float, generator: torch.Generator) -> Tensor:
    """Uniform draws in ``±bound`` of ``like``'s shape and dtype from ``generator``, made on the
    generator's device and moved to ``like``'s."""
    drawn = torch.empty(like.shape, dtype=like.dtype, device=generator.device).uniform_(-bound, bound, generator=generator)
    return drawn.to(like.device)


class Contrast(nn.Module):
    """``log softmax f(x) − log softmax f_s(x)`` (float32 or wider): large for the class that ``f``
    gives ``x`` and ``f_s`` does not. Its argmax and cross-entropy are what Neural Cleanse
    optimises when it is given this module as the model.

    A class ruled out by both (a ``-inf`` logit, ``logits.masked_fill(~seen, float("-inf"))``) stays ruled out: its
    contrast is ``-inf``, not ``-inf − (-inf)`` = NaN, which Neural Cleanse refuses. No input is moved into it, as
    none is into the model's own class, and Neural Cleanse leaves a class of -inf on every input out of its median and
    MAD (:attr:`~lightning_causal.causal.backdoor.flagging.ReversedTriggers.ruled_out`), where a finite value (the
    contrast of a class both give the same finite logit) put meaningless masks: 3 of 3 classes of a clean CNN of 10
    outputs, 7 ruled out, were flagged on the contrast. A class only one of the two rules out is ruled out of the
    contrast too: ``-inf`` where the model does, and where the copy only does (a mask that reads the outputs, a top-k
    gate the tuning moved) ``-inf`` rather than ``finite − (-inf)`` = ``+inf``, which Neural Cleanse refused as the
    outputs of a diverged model. A sample whose two models rule out every class between them (disjoint top-k sets)
    has no contrast in any class: Neural Cleanse refuses it, naming that cause and the sample.

    Examples:
        >>> f = nn.Linear(2, 2)
        >>> Contrast(f, f)(torch.ones(3, 2)).abs().max().item()
        0.0
        >>> class Masked(nn.Module):  # the third class ruled out
        ...     def forward(self, x):
        ...         return torch.cat([x, torch.full_like(x[:, :1], float("-inf"))], 1)
        >>> Contrast(Masked(), Masked())(torch.ones(1, 2)).tolist()  # the same model: no contrast; the third ruled out
        [[0.0, 0.0, -inf]]
        >>> Contrast(lambda x: torch.zeros(1, 3), Masked())(torch.zeros(1, 2)).tolist()[0][2]  # ruled out by the copy only
        -inf
    """

    def __init__(self, model: nn.Module, shifted: nn.Module) -> None:
        super().__init__()
        self.model, self.shifted = model, shifted

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.model(x), self.shifted(x)
        dtype = torch.promote_types(a.dtype, torch.float32)
        a, b = a.to(dtype), b.to(dtype)
        contrast = F.log_softmax(a, 1) - F.log_softmax(b, 1)
        # ruled out by either: ruled out (not -inf - (-inf) = NaN, nor finite - (-inf) = +inf, which Neural Cleanse refuses
        # as a diverged model); no host sync: Neural Cleanse calls this at every step
        return contrast.masked_fill(a.isneginf() | b.isneginf(), float("-inf"))
