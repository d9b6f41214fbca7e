"""Statistics of reverse-engineered trigger masks: how small a class's mask is against the
others (:func:`norm_ratio`) and how compact it is (:func:`mask_concentration`)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from lightning_causal.causal.engine.checks import check_int

__all__ = ["compact_ratio", "divide_by_concentration", "mask_concentration", "norm_ratio"]


def mask_concentration(masks: Tensor, window: int = 3) -> Tensor:
    """Share of each mask's L1 mass inside its densest ``window x window`` square.

    .. math:: κ_c = \\max_{s} \\frac{\\sum_{(i, j) \\in W_s} m_c(i, j)}{\\sum_{i, j} m_c(i, j)}

    over the square windows ``W_s`` of side ``window`` (clipped to the image) — the compactness
    prior of TABOR (Guo et al. 2019) used as a statistic: a planted patch trigger (BadNets) that
    fits in the window gives ``κ = 1``, the spread-out strokes Neural Cleanse finds for a class
    that is simply easy to reach give much less. ``κ = 0`` for an all-zero mask.

    Args:
        masks: ``[C, H, W]`` or ``[C, 1, H, W]`` non-negative masks (one per class).
        window: side of the square, in pixels (``>= 1``).

    Raises:
        ValueError: masks not 3-D/4-D with one channel, negative values, ``window`` < 1.

    Examples:
        >>> m = torch.zeros(2, 4, 4)
        >>> m[0, 2:, 2:] = 1.0          # a 2x2 corner patch
        >>> m[1, 0, :] = m[1, :, 0] = 1.0  # an L along two edges (7 pixels)
        >>> mask_concentration(m, window=2)
        tensor([1.0000, 0.4286])
    """
    check_int("window", window, minimum=1)
    if not isinstance(masks, Tensor) or masks.dim() not in (3, 4) or (masks.dim() == 4 and masks.shape[1] != 1):
        raise ValueError(f"Expected argument `masks` to be [C, H, W] or [C, 1, H, W] but got {getattr(masks, 'shape', type(masks))}")
    if (masks < 0).any():
        raise ValueError("Expected argument `masks` to be non-negative")
    m = (masks if masks.dim() == 4 else masks.unsqueeze(1)).float()
    k = (min(window, m.shape[-2]), min(window, m.shape[-1]))
    best = F.avg_pool2d(m, k, stride=1).flatten(1).amax(1) * (k[0] * k[1])
    total = m.flatten(1).sum(1)
    return torch.where(total > 0, best / total.clamp_min(1e-12), torch.zeros_like(total)).to(masks.dtype)


def norm_ratio(norms: Tensor) -> Tensor:
    """Each value over the median of the values (the median of an even count is the mean of the
    two middle ones): how much smaller a class's reversed trigger is than a typical class's.

    Args:
        norms: one value per class ``[K]`` (the reversed masks' norms).

    Examples:
        >>> norm_ratio(torch.tensor([2.0, 8.0, 10.0, 12.0]))
        tensor([0.2222, 0.8889, 1.1111, 1.3333])
    """
    med = norms.double().quantile(0.5)
    return (norms.double() / med.clamp_min(1e-12)).to(norms.dtype)


def compact_ratio(norms: Tensor, concentration: Tensor | None, power: float) -> Tensor:
    """:func:`norm_ratio` divided by :func:`mask_concentration` to the power ``power``: a mask
    that is small *and* compact (a reversed patch trigger) scores low, a small mask spread over
    a class's strokes scores higher.

    .. math:: s_c = \\frac{\\lVert m_c \\rVert_1}{\\operatorname{med}_k \\lVert m_k \\rVert_1} \\cdot κ_c^{-p}

    The norm ratio is Neural Cleanse's statistic (Wang et al. 2019) without the MAD; ``κ`` is
    TABOR's compactness prior (Guo et al. 2019) used as a statistic. ``power = 0`` or
    ``concentration = None`` (inputs that are not images) give the plain norm ratio.

    Args:
        norms: ``[C]`` mask norms.
        concentration: ``[C]`` concentrations in [0, 1], or ``None``.
        power: ``p >= 0``.

    Examples:
        >>> compact_ratio(torch.tensor([2.0, 8.0, 10.0, 12.0]), torch.tensor([1.0, 0.5, 0.5, 0.5]), 1.0)
        tensor([0.2222, 1.7778, 2.2222, 2.6667])
    """
    return divide_by_concentration(norm_ratio(norms), concentration, power)


def divide_by_concentration(ratio: Tensor, concentration: Tensor | None, power: float) -> Tensor:
    """``ratio / concentration ** power`` (``ratio`` itself for ``power = 0`` or no
    concentration); the second step of :func:`compact_ratio`.

    Args:
        ratio: the ratios ``[K]`` (:func:`norm_ratio`).
        concentration: one concentration per class ``[K]``, or ``None``.
        power: the exponent (a number >= 0).
    """
    if not isinstance(power, (int, float)) or isinstance(power, bool) or not power >= 0:
        raise ValueError(f"Expected argument `power` to be a number >= 0 but got {power!r}")
    if concentration is None or power == 0:
        return ratio
    if concentration.shape != ratio.shape:
        raise ValueError(f"Expected argument `concentration` to have the shape of the ratios {list(ratio.shape)} but got {list(concentration.shape)}")
    return (ratio.double() / concentration.double().clamp_min(1e-6) ** float(power)).to(ratio.dtype)
