"""Reverse-engineer the trigger of one class (Neural Cleanse's optimisation for a single target),
optionally confined to a region: e.g. to complete a partial trigger around where it was found."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.backdoor.trigger_search import (
    _check_finite_logits,
    _check_reverse_args,
    _init_theta,
    _optimisation_dtype,
    _optimise_classes,
    _prepare,
    _ruled_out,
    _unattacked,
)
from lightning_causal.causal.backdoor.triggers import SEARCH_WAY_OUT, Trigger, _check_model, _logits
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.forward import OutputSpec
from lightning_causal.causal.engine.noise import warn_separate_noise
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.state import audit_mode, frozen_params
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["reverse_trigger"]


def _check_region(region: Tensor | None, mshape: tuple[int, ...]) -> Tensor | None:
    if region is None:
        return None
    if not isinstance(region, Tensor) or tuple(region.shape) != mshape or not bool(((region == 0) | (region == 1)).all()):
        raise ValueError(f"Expected argument `region` to be None or a 0/1 tensor of the mask's shape {list(mshape)} "
                         f"but got {getattr(region, 'shape', type(region))}")
    if not region.any():
        raise ValueError("Expected argument `region` to hold at least one 1")
    return region


def reverse_trigger(
    model: nn.Module,
    x: Tensor,
    target: int,
    steps: int = 300,
    *,
    region: Tensor | None = None,
    lr: float = 0.1,
    init_lambda: float = 1e-3,
    target_asr: float = 0.99,
    batch_size: int = 64,
    patience: int = 10,
    input_range: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    channel_dim: int | None = 1,
) -> Trigger:
    """The smallest trigger sending ``x`` to class ``target``: Neural Cleanse's optimisation
    (Wang et al. 2019) for one class, the mask optionally confined to ``region`` ``R``:

    .. math:: \\min_{θ_m, p}\\ \\mathbb{E}_x\\, CE\\big(f((1 − m)\\,x + m\\,p),\\ t\\big) + λ \\lVert m \\rVert_1,
              \\qquad m = R \\odot (\\tanh θ_m + 1)/2

    with ``λ`` adapted to reach ``target_asr`` exactly as in
    :func:`~lightning_causal.causal.backdoor.neural_cleanse.neural_cleanse`, which runs this for
    every class and compares the masks; one class costs ``1/C`` of that run. A trigger reversed to
    a low rate (how ``neural_cleanse`` detects) is often the part of a planted stamp that the
    model learned best; reversing again to a high rate *inside a region around it* completes the
    stamp without borrowing the class's natural strokes elsewhere
    (``BackdoorSuppressionTerm(complete=...)``).

    The model runs in eval mode with its parameters' ``requires_grad`` off, every flag restored
    afterwards; the global RNG is never used (default generator: seed 0).

    Args:
        model: classifier returning logits ``[N, C]``.
        x: clean inputs ``[N, ...]``.
        target: the class (``0 <= target < C``).
        channel_dim: the input dimension sharing one mask entry (1: channels; ``-1`` for
            features-last sequences; :func:`~lightning_causal.causal.backdoor.neural_cleanse.mask_shape`).
        steps: optimisation steps.
        region: ``None`` or a 0/1 tensor of the mask's shape (``[1, H, W]`` for images): where
            the mask may be non-zero.
        lr: Adam learning rate, as in ``neural_cleanse``.
        init_lambda: initial ``λ``, as in ``neural_cleanse``.
        target_asr: attack rate the trigger must reach (a number; default 0.99), as in
            ``neural_cleanse``.
        batch_size: inputs per step, as in ``neural_cleanse``.
        patience: steps before ``λ`` changes, as in ``neural_cleanse``.
        input_range: ``(low, high)`` of the pattern (default: the range of ``x``), as in
            ``neural_cleanse``.
        generator: private random generator (default: seed 0), as in ``neural_cleanse``.
        max_batch_size: rows per forward pass, as in ``neural_cleanse``.
        output: which tensor of the model's return value holds the logits, as in ``neural_cleanse``.
        additional_forward_args: further arguments of the model, as in ``neural_cleanse``.

    Returns:
        the reversed :class:`~lightning_causal.causal.backdoor.triggers.Trigger`: the smallest
        mask that reached ``target_asr`` (the last one if none did).

    Raises:
        ValueError: bad arguments, a ``region`` that is not 0/1 of the mask's shape or is empty,
            ``target`` not a class of the model.

    Warns:
        ProbeContentsWarning: every input of ``x`` is already predicted as ``target``: the search has no input to move,
            the mask shrinks under its penalty alone and says nothing of a backdoor (``neural_cleanse`` never flags
            such a class); or ``target``'s output is -inf on every input and the search never reached it (no
            gradient towards an output of -inf: the mask measures no trigger; ``neural_cleanse``'s ``ruled_out``).

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x = torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(0))
        >>> t = reverse_trigger(model, x, 2, steps=5, region=torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]))
        >>> t.target, tuple(t.mask.shape), float(t.mask[0, 1:].abs().sum())
        (2, (1, 2, 2), 0.0)
    """
    _check_model(model)
    check_int("target", target, minimum=0)
    _check_reverse_args(x, max(target + 1, 2), steps, lr, init_lambda, target_asr, batch_size, patience, generator)
    run = _prepare(model, x, steps, lr, init_lambda, target_asr, batch_size, patience, input_range, generator,
                   max_batch_size, output, additional_forward_args, channel_dim)
    region = _check_region(region, run.mshape)
    dev = x.device
    with torch.inference_mode(False):
        x = x.detach().clone()
        opt = _optimisation_dtype(x)  # at least float32; the trigger is returned in x's dtype
        theta_m = _init_theta((1, *run.mshape), run.generator, dev).to(opt)
        theta_p = _init_theta((1, *x.shape[1:]), run.generator, dev).to(opt)
        with audit_mode(model, grad=True), frozen_params(model), torch.enable_grad():
            with torch.no_grad():
                warn_separate_noise(run.fwd, (x,), "reverse_trigger")  # each step of the search sees another draw
                logits = _logits(model, x, run.max_batch_size, run.fwd, "reverse_trigger", way_out=SEARCH_WAY_OUT)
                _check_finite_logits(logits, "reverse_trigger")
            if not target < logits.shape[1]:
                raise ValueError(f"Expected argument `target` to be a class of the model's {logits.shape[1]} outputs but got {target}")
            if _unattacked(logits.argmax(1)) == [target]:  # as neural_cleanse's class of every input (never flagged there)
                warnings.warn(
                    f"reverse_trigger: every one of the {x.shape[0]} inputs is already predicted as class {target}: its "
                    "reversed trigger has no input to move and shrinks under the mask penalty alone, so its small mask says "
                    f"nothing of a backdoor into class {target}; reverse it on inputs the model puts in other classes",
                    ProbeContentsWarning, stacklevel=outside_package())
            cls = torch.tensor([target], device=dev)
            keep = None if region is None else region.to(device=dev, dtype=opt).unsqueeze(0)
            mask, pattern, _, reached = _optimise_classes(run.fwd, x, logits.argmax(1), cls, theta_m, theta_p, run.batches, run.cfg, keep)
    if target in _ruled_out(logits) and not bool(reached[0]):  # as neural_cleanse's ruled_out (never flagged there)
        warnings.warn(
            f"reverse_trigger: class {target}'s output is -inf on every one of the {x.shape[0]} inputs (a class the model "
            "rules out, e.g. `masked_fill(~seen, float('-inf'))` of a class not yet seen) and its reversed trigger never "
            "reached it: the search gets no gradient towards an output of -inf, so the mask, grown as the penalty's weight "
            f"fell, measures no trigger, and whether a trigger opens class {target} for other inputs is not tested",
            ProbeContentsWarning, stacklevel=outside_package())
    return Trigger(mask[0].detach().to(x.dtype), pattern[0].detach().to(x.dtype), target)
