"""Neural Cleanse's localised starts (``starts > 1``): the windows of half the image's side where a start's
mask begins concentrated, its initial parameters, and the start each class keeps."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_causal.causal.backdoor.mask_statistics import (
    divide_by_concentration,
    mask_concentration,
)

__all__ = ["MAX_STARTS"]

#: The most optimisation starts per class: Neural Cleanse's random one and the windows of :func:`_window_corners`.
MAX_STARTS = 10


def _half_window(h: int, w: int) -> tuple[int, int]:
    """Side of a localised start's window: ``ceil(h/2) x ceil(w/2)``."""
    return -(-h // 2), -(-w // 2)


def _window_corners(h: int, w: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` windows of :func:`_half_window`'s size: the four corners,
    the centre, then the four edge midpoints."""
    wh, ww = _half_window(h, w)
    top, left, mid_r, mid_c = h - wh, w - ww, (h - wh) // 2, (w - ww) // 2
    spots = [(0, 0), (0, left), (top, 0), (top, left), (mid_r, mid_c), (0, mid_c), (top, mid_c), (mid_r, 0), (mid_r, left)]
    return spots[:count]


def _local_theta(num_classes: int, mshape: tuple[int, ...], corner: tuple[int, int], device: torch.device) -> Tensor:
    """Mask parameters squashing to 0.6 inside one window and 0.02 outside (a localised start)."""
    wh, ww = _half_window(mshape[-2], mshape[-1])
    m = torch.full((num_classes, *mshape), 0.02)
    r, c = corner
    m[..., r : r + wh, c : c + ww] = 0.6
    return torch.atanh(2 * m - 1).to(device)


def _best_start(masks: Tensor, patterns: Tensor, lambdas: Tensor, reached: Tensor, num_classes: int,
                window: int, compactness: float) -> tuple[Tensor, Tensor, Tensor]:
    """Per class, the start with the lowest score ``|m|_1 / κ^p`` (the rule's score up to the
    median, which all starts share; ``p = 0``: the smallest mask) among those that reached the
    target rate (start 0 if none did); rows are ordered ``s * C + c``."""
    score = divide_by_concentration(masks.flatten(1).sum(1), mask_concentration(masks, window), compactness)
    score = score.view(-1, num_classes)
    ok = reached.view(-1, num_classes)
    pick = torch.where(ok, score, torch.full_like(score, float("inf"))).argmin(0)
    pick = torch.where(ok.any(0), pick, torch.zeros_like(pick))
    rows = pick * num_classes + torch.arange(num_classes, device=masks.device)
    return masks[rows], patterns[rows], lambdas[rows]
