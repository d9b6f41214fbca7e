"""Data poisoning for backdoor experiments (BadNets, Gu et al. 2017): patch triggers and
poisoned training sets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_causal.causal.backdoor.triggers import Trigger

__all__ = ["patch_trigger", "poison"]

_CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")


def patch_trigger(
    input_shape: Sequence[int],
    size: int | tuple[int, int] = 2,
    position: str | tuple[int, int] = "bottom_right",
    value: float | Tensor = 1.0,
    target: int = 0,
) -> Trigger:
    """A rectangular patch trigger for images ``input_shape = (C, H, W)`` (one sample).

    Args:
        input_shape: ``(C, H, W)``.
        size: patch side, or ``(height, width)``.
        position: a corner name (``"top_left"``, ``"top_right"``, ``"bottom_left"``,
            ``"bottom_right"``) or the ``(row, col)`` of the patch's top-left pixel.
        value: the stamped value (scalar) or a pattern tensor broadcastable to ``(C, h, w)``.
        target: the class the backdoor leads to.

    Raises:
        ValueError: a patch that does not fit, an unknown corner, a bad shape.

    Examples:
        >>> t = patch_trigger((1, 4, 4), size=2, position="bottom_right", target=7)
        >>> t.mask[0]
        tensor([[0., 0., 0., 0.],
                [0., 0., 0., 0.],
                [0., 0., 1., 1.],
                [0., 0., 1., 1.]])
    """
    if len(input_shape) != 3 or not all(isinstance(s, int) and s > 0 for s in input_shape):
        raise ValueError(f"Expected argument `input_shape` to be (C, H, W) of positive ints but got {tuple(input_shape)}")
    c, h, w = input_shape
    ph, pw = (size, size) if isinstance(size, int) else tuple(size)
    if not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s for s in (ph, pw)) or ph > h or pw > w:
        raise ValueError(f"Expected argument `size` to be positive and fit in {h}x{w} but got {size!r}")
    if isinstance(position, str):
        if position not in _CORNERS:
            raise ValueError(f"Expected argument `position` to be one of {_CORNERS} or (row, col) but got {position!r}")
        r = 0 if position.startswith("top") else h - ph
        col = 0 if position.endswith("left") else w - pw
    else:
        r, col = position
        if not (0 <= r <= h - ph and 0 <= col <= w - pw):
            raise ValueError(f"Expected argument `position` so that a {ph}x{pw} patch fits in {h}x{w} but got {position!r}")
    mask = torch.zeros(1, h, w)
    mask[:, r : r + ph, col : col + pw] = 1.0
    pattern = torch.zeros(c, h, w)
    pattern[:, r : r + ph, col : col + pw] = torch.as_tensor(value, dtype=torch.float32)
    return Trigger(mask, pattern, target)


def poison(
    x: Tensor, y: Tensor, trigger: Trigger, rate: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Stamp the trigger on a random ``rate`` share of the samples and relabel them to its target.

    ``round(rate · N)`` samples are drawn without replacement among those whose label is not the
    target (a private ``generator``, default seed 0; the global RNG is untouched).

    Returns:
        ``(x_poisoned, y_poisoned, poisoned)`` where ``poisoned`` is a boolean ``[N]`` mask.

    Raises:
        ValueError: ``rate`` outside ``[0, 1]``, too few non-target samples, mismatched shapes.

    Examples:
        >>> t = patch_trigger((1, 2, 2), size=1, target=1)
        >>> xp, yp, hit = poison(torch.zeros(4, 1, 2, 2), torch.tensor([0, 0, 1, 1]), t, 0.5)
        >>> yp.tolist(), int(hit.sum()), float(xp[hit].sum())
        ([1, 1, 1, 1], 2, 2.0)
    """
    if not isinstance(trigger, Trigger):
        raise TypeError(f"Expected argument `trigger` to be a Trigger but got {type(trigger)}")
    trigger.check(x)
    if not isinstance(y, Tensor) or y.shape != (x.shape[0],) or y.is_floating_point():
        raise ValueError(f"Expected argument `y` to be integer labels [{x.shape[0]}] but got {getattr(y, 'shape', type(y))}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"Expected argument `rate` in [0, 1] but got {rate!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    candidates = (y != trigger.target).nonzero().squeeze(1)
    k = round(rate * x.shape[0])
    if k > candidates.numel():
        raise ValueError(f"Expected at most {candidates.numel()} non-target samples to poison but `rate` {rate} asks for {k}")
    chosen = candidates[torch.randperm(candidates.numel(), generator=g)[:k].to(candidates.device)]
    poisoned = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    poisoned[chosen] = True
    x_p, y_p = x.clone(), y.clone()
    x_p[poisoned] = trigger.apply(x[poisoned])
    y_p[poisoned] = trigger.target
    return x_p, y_p, poisoned
