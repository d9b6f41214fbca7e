"""Reverse-engineered triggers made into the stamps a repair unlearns: :func:`binarized` (a
full-strength stamp of the soft mask's support, patches with holes completed), :func:`dilated`
(the support grown by a few pixels) and :func:`search_regions` (the stamp that flips the model
most inside a region around the support, searched by signed-gradient steps)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.leaf_gradients import LeafGradients
from lightning_causal.causal.engine.state import audit_mode, frozen_params

__all__ = ["binarized", "dilated", "grown_mask", "search_regions"]


def _mean_colour(mask: Tensor, pattern: Tensor) -> tuple[Tensor, Tensor]:
    """The mask broadcast to the pattern's shape and the mask-weighted mean colour of the pattern
    per channel ``[C, 1, 1]``."""
    m = mask.expand(torch.broadcast_shapes(mask.shape, pattern.shape))
    return m, (m * pattern).sum((-1, -2), keepdim=True) / m.sum((-1, -2), keepdim=True).clamp_min(1e-12)


def grown_mask(mask: Tensor, pixels: int) -> Tensor:
    """A 0/1 image mask ``[C, H, W]`` grown by ``pixels`` in every direction (a square
    neighbourhood; ``pixels = 0`` returns it as it is).

    Examples:
        >>> grown_mask(torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]), 1)[0]
        tensor([[0., 0., 0.],
                [0., 1., 1.],
                [0., 1., 1.]])
    """
    return F.max_pool2d(mask.unsqueeze(0), 2 * pixels + 1, stride=1, padding=pixels)[0] if pixels else mask


def dilated(trigger: Trigger, pixels: int = 1) -> Trigger:
    """The trigger's mask binarised at 0.5 and grown by ``pixels`` in every direction (images
    ``[C, H, W]``), stamped with the mask-weighted mean colour of its pattern.

    A reverse-engineered trigger is the *smallest* stamp that flips the model; the planted one
    is usually a little larger, and unlearning only the minimal stamp can leave the rest of it
    working. Unlearning the grown stamp as well covers the neighbourhood.

    Args:
        trigger: an image trigger (mask ``[C, H, W]``).
        pixels: how far the binarised mask grows in every direction.

    Examples:
        >>> t = Trigger(torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.9]]]), torch.ones(1, 3, 3), 0)
        >>> dilated(t).mask[0]
        tensor([[0., 0., 0.],
                [0., 1., 1.],
                [0., 1., 1.]])
    """
    if trigger.mask.dim() != 3:
        raise ValueError(f"Expected an image trigger with a mask [C, H, W] to dilate but got {list(trigger.mask.shape)}")
    hard = (trigger.mask > 0.5).float()
    if not hard.any():
        return trigger
    grown = grown_mask(hard, pixels)
    m, colour = _mean_colour(trigger.mask, trigger.pattern)
    return Trigger(grown, colour.expand(m.shape).clone(), trigger.target)


def _check_share(value: object, name: str, allow_one: bool, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a number in (0, 1) (or (0, 1] with ``allow_one``)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (0 < value < 1 or (allow_one and value == 1)):
        allowed = ("None or " if allow_none else "") + ("a number in (0, 1]" if allow_one else "a number in (0, 1)")
        raise ValueError(f"Expected argument `{name}` to be {allowed} but got {value!r}")


def binarized(trigger: Trigger, threshold: float = 0.25, box_fill: float | None = 0.5) -> Trigger:
    """The trigger stamped at full strength on its support: mask ``1[m > threshold]``, the same
    pattern; for an image trigger (mask ``[C, H, W]``) whose support covers at least ``box_fill``
    of its bounding box, the whole box (a patch with holes is completed; the new pixels take
    the mask-weighted mean colour of the pattern).

    A reverse-engineered mask is soft (``m = (tanh θ + 1)/2``) and minimal: Neural Cleanse blends
    the pattern only as much as the model needs, so a pixel of the planted patch can come out at
    ``m ≈ 0.3``, or not at all when three of a 2x2 patch's four pixels suffice. A planted BadNets
    patch is a full-strength rectangle; the completed stamp reproduces it, and unlearning it
    removes what the minimal stamp leaves working. A scattered support (less than ``box_fill``
    of its box) is not completed; if no mask value exceeds ``threshold`` the trigger is returned
    unchanged.

    Args:
        trigger: the trigger.
        threshold: the mask level of the support, in ``(0, 1)``.
        box_fill: the share of its bounding box the support must cover for the box to be filled, in
            ``(0, 1]``; ``None``: never filled.

    Raises:
        ValueError: ``threshold`` not in (0, 1), ``box_fill`` not None or in (0, 1].

    Examples:
        >>> t = Trigger(torch.tensor([0.0, 0.3, 0.9]), torch.tensor([5.0, 6.0, 7.0]), 1)
        >>> binarized(t).mask, binarized(t).pattern
        (tensor([0., 1., 1.]), tensor([5., 6., 7.]))
        >>> corner = Trigger(torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.9, 0.8], [0.0, 0.6, 0.1]]]), torch.ones(1, 3, 3), 0)
        >>> binarized(corner).mask[0]
        tensor([[0., 0., 0.],
                [0., 1., 1.],
                [0., 1., 1.]])
    """
    _check_share(threshold, "threshold", allow_one=False)
    if box_fill is not None:
        _check_share(box_fill, "box_fill", allow_one=True, allow_none=True)
    hard = (trigger.mask > threshold).to(trigger.mask.dtype)
    if not hard.any():
        return trigger
    if box_fill is None or hard.dim() != 3:
        return Trigger(hard, trigger.pattern, trigger.target)
    support = hard.amax(0)
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    box = torch.zeros_like(hard)
    box[:, int(rows.min()) : int(rows.max()) + 1, int(cols.min()) : int(cols.max()) + 1] = 1
    if float(hard.sum()) < box_fill * float(box.sum()) or torch.equal(box, hard):
        return Trigger(hard, trigger.pattern, trigger.target)
    m, colour = _mean_colour(hard, trigger.pattern)
    return Trigger(box, torch.where(m > 0, trigger.pattern.expand(m.shape), colour), trigger.target)


def search_regions(forward: Forward, x: Tensor, regions: Sequence[Tensor], targets: Tensor, value_range: tuple[float, float],
                   steps: int, generator: torch.Generator) -> Tensor:
    """Copies of ``x`` whose region (row ``i``: ``regions[i mod K]``, ``[1 or C, H, W]``) is set, from
    a uniform random start in ``value_range`` drawn from ``generator``, by ``steps`` signed-gradient
    steps of a quarter of the range that raise ``log softmax(forward(x'))[targets]`` (projected
    gradient ascent, Madry et al. 2018); every other pixel is the row's own.

    The model ``forward`` wraps runs in eval mode with its parameters frozen, modes and flags
    restored: no BatchNorm statistics move, no dropout draws from the global generator
    and no parameter gradient is made.

    Examples:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> with torch.no_grad():  # class 1's logit is the bottom-right pixel
        ...     _ = model[1].weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
        >>> region = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
        >>> search_regions(Forward(model), torch.zeros(1, 1, 2, 2), [region], torch.tensor([1]), (0.0, 1.0), 5,
        ...                torch.Generator().manual_seed(0))[0, 0]
        tensor([[0., 0.],
                [0., 1.]])
    """
    lo, hi = value_range
    stacked = torch.stack(list(regions)).to(x.device)
    region = stacked[torch.arange(x.shape[0], device=x.device) % len(regions)] > 0
    x = x.detach()
    xa = torch.where(region, torch.rand(x.shape, generator=generator).to(x) * (hi - lo) + lo, x)
    grads = LeafGradients(forward.model)  # also through a reentrant activation checkpoint, decided at the first step

    def log_p() -> Tensor:  # of the current xa; run again where torch refused a later step's .grad() (LeafGradients)
        return forward(xa).float().log_softmax(1).gather(1, targets.view(-1, 1)).sum()

    # at every training step, the parameters frozen: no fingerprint of each parameter twice a step (param_writes)
    with audit_mode(forward.model, grad=True, watch_writes=False), frozen_params(forward.model), torch.enable_grad():
        for _ in range(steps):
            xa.requires_grad_(True)
            grad = grads.grad(log_p(), xa, again=log_p)
            xa = torch.where(region, (xa.detach() + 0.25 * (hi - lo) * grad.sign()).clamp(lo, hi), x)
    return xa.detach()
