"""Data poisoning for backdoor experiments: trigger families and poisoned training sets.

- :func:`patch_trigger`: a rectangular patch (BadNets, Gu et al. 2017);
- :func:`shape_trigger`: an irregular stamp of a few pixels drawn as a character grid (a cross,
  an L, a checkerboard, ...), anywhere in the image;
- :func:`blended_trigger`: a global pattern blended into the whole image at a low opacity
  (Chen et al. 2017), the family Neural Cleanse cannot see: its mask is not small.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.engine.checks import check_float, check_seed

__all__ = ["blended_trigger", "patch_trigger", "poison", "shape_trigger"]

_CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
_STAMP_VALUES = {"X": 1.0, "o": 0.0}


def patch_trigger(
    input_shape: Sequence[int],
    size: int | tuple[int, int] = 2,
    position: str | tuple[int, int] = "bottom_right",
    value: float | Tensor = 1.0,
    *,
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
    c, h, w = _check_shape(input_shape)
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
    # a floating pattern tensor keeps its precision (a float64 pattern stamped in float32 moved 0.1 by 1e-9)
    dtype = value.dtype if isinstance(value, Tensor) and value.is_floating_point() else torch.get_default_dtype()
    mask = torch.zeros(1, h, w, dtype=dtype)
    mask[:, r : r + ph, col : col + pw] = 1.0
    pattern = torch.zeros(c, h, w, dtype=dtype)
    pattern[:, r : r + ph, col : col + pw] = torch.as_tensor(value, dtype=dtype)
    return Trigger(mask, pattern, target)


def _check_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    if len(input_shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in input_shape):
        raise ValueError(f"Expected argument `input_shape` to be (C, H, W) of positive ints but got {tuple(input_shape)}")
    return input_shape[0], input_shape[1], input_shape[2]


def _parse_stamp(stamp: str) -> tuple[Tensor, Tensor]:
    """``(on, values)`` ``[h, w]`` of a stamp drawn as rows of ``X`` (1.0), ``o`` (0.0) and ``.``
    (not part of the trigger) separated by ``/``."""
    rows = stamp.split("/") if isinstance(stamp, str) else []
    if not rows or len({len(r) for r in rows}) != 1 or not rows[0] or any(ch not in "Xo." for r in rows for ch in r):
        raise ValueError(f"Expected argument `stamp` to be rows of equal length of 'X' (1.0), 'o' (0.0) and '.' (off) "
                         f"separated by '/' but got {stamp!r}")
    on = torch.tensor([[ch != "." for ch in r] for r in rows])
    if not on.any():
        raise ValueError(f"Expected argument `stamp` to switch on at least one pixel ('X' or 'o') but got {stamp!r}")
    values = torch.tensor([[_STAMP_VALUES.get(ch, 0.0) for ch in r] for r in rows])
    return on, values


def shape_trigger(input_shape: Sequence[int], stamp: str, position: tuple[int, int] = (0, 0), target: int = 0) -> Trigger:
    """An irregular stamp of a few pixels (a cross, an L, a diagonal, a checkerboard, ...) at ``position``.

    The stamp is drawn as a character grid, rows separated by ``/``: ``X`` stamps 1.0 (white on
    digits), ``o`` stamps 0.0 (black) and ``.`` leaves the pixel alone. The mask is 1 on the
    stamped pixels (shared by the channels) and 0 elsewhere.

    Args:
        input_shape: ``(C, H, W)``.
        stamp: the grid, e.g. ``".X./XXX/.X."`` (a 5-pixel plus).
        position: ``(row, col)`` of the grid's top-left cell.
        target: the class the backdoor leads to.

    Raises:
        ValueError: a malformed grid, a stamp that does not fit at ``position``, a bad shape.

    Examples:
        >>> t = shape_trigger((1, 4, 4), "X./oX", position=(1, 2), target=3)
        >>> t.mask[0]
        tensor([[0., 0., 0., 0.],
                [0., 0., 1., 0.],
                [0., 0., 1., 1.],
                [0., 0., 0., 0.]])
        >>> t.pattern[0, 1:3, 2:]
        tensor([[1., 0.],
                [0., 1.]])
    """
    c, h, w = _check_shape(input_shape)
    on, values = _parse_stamp(stamp)
    sh, sw = on.shape
    ok = isinstance(position, (tuple, list)) and len(position) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in position)
    if not ok or not (0 <= position[0] <= h - sh and 0 <= position[1] <= w - sw):
        raise ValueError(f"Expected argument `position` (row, col) so that a {sh}x{sw} stamp fits in {h}x{w} but got {position!r}")
    r, col = position
    mask, pattern = torch.zeros(1, h, w), torch.zeros(c, h, w)
    mask[0, r : r + sh, col : col + sw] = on.float()
    pattern[:, r : r + sh, col : col + sw] = values * on
    return Trigger(mask, pattern, target)


def blended_trigger(input_shape: Sequence[int], opacity: float = 0.15, pattern: Tensor | None = None,
                    target: int = 0, *, seed: int = 0, value_range: tuple[float, float] = (0.0, 1.0)) -> Trigger:
    """A global pattern blended into the whole input at ``opacity`` (Chen et al. 2017):
    ``x' = (1 − a)·x + a·k`` for every pixel.

    ``k`` is ``pattern`` (broadcastable to ``(C, H, W)``) or, by default, uniform noise on
    ``value_range`` drawn from a private generator seeded with ``seed`` (Chen et al.'s random
    key pattern). The mask is ``a`` everywhere: the trigger touches every pixel a little, so
    Neural Cleanse, which looks for a trigger with a small mask, cannot find it.

    Args:
        input_shape: one image's shape ``(C, H, W)``.
        opacity: the blend weight ``a`` in ``(0, 1]``.
        pattern: the key pattern ``k``, broadcastable to ``(C, H, W)``; ``None``: uniform noise, as
            above.
        target: the class the trigger's samples are relabelled to.
        seed: the seed of the default noise pattern.
        value_range: ``(low, high)`` of the default noise pattern (the images' value range).

    Raises:
        ValueError: ``opacity`` not in (0, 1], a pattern that does not broadcast, a bad shape.

    Examples:
        >>> t = blended_trigger((1, 2, 2), opacity=0.25, pattern=torch.ones(1, 2, 2), target=1)
        >>> t.apply(torch.zeros(1, 1, 2, 2))[0, 0]
        tensor([[0.2500, 0.2500],
                [0.2500, 0.2500]])
        >>> blended_trigger((1, 8, 8), 0.1, seed=3).pattern.shape
        torch.Size([1, 8, 8])
    """
    c, h, w = _check_shape(input_shape)
    check_float("opacity", opacity, minimum=0.0, maximum=1.0, open_min=True)
    check_seed(seed)
    lo, hi = value_range
    if pattern is None:
        pattern = lo + (hi - lo) * torch.rand(c, h, w, generator=torch.Generator().manual_seed(seed))
    if not isinstance(pattern, Tensor) or not pattern.is_floating_point():
        raise ValueError(f"Expected argument `pattern` to be None or a floating-point tensor but got {type(pattern)}")
    try:
        full = pattern.expand(c, h, w).clone()
    except RuntimeError as err:
        raise ValueError(f"Expected argument `pattern` {list(pattern.shape)} to broadcast to {[c, h, w]}") from err
    return Trigger(torch.full((1, h, w), float(opacity)), full, target)


def poison(
    x: Tensor, y: Tensor, trigger: Trigger, rate: float, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Stamp the trigger on a random ``rate`` share of the samples and relabel them to its target.

    ``round(rate · N)`` samples are drawn without replacement among those whose label is not the
    target (a private ``generator``, default seed 0; the global RNG is untouched).

    Args:
        x: floating-point inputs ``[N, ...]`` (images ``[N, C, H, W]``) that the trigger's mask and
            pattern broadcast to (:meth:`~lightning_causal.causal.backdoor.triggers.Trigger.check`).
        y: integer labels ``[N]``.
        trigger: the :class:`~lightning_causal.causal.backdoor.triggers.Trigger` stamped (its ``target``
            is the new label).
        rate: the share of all ``N`` samples poisoned, in ``[0, 1]``.
        generator: the ``torch.Generator`` that draws them; ``None``: a private one seeded with 0.

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
