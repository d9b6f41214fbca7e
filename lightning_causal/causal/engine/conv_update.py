"""The update of a convolution that reads an intervened layer's output (the linear update's convolutions).

A convolution is linear in its input. A unit intervention on a convolution's input channels ``S`` (a filter of the
layer before it, set or scaled in one row) changes those channels only, so the convolution's output in that row is its
probe output plus the convolution of the change alone, through the weight of those channels and without bias::

    y' = conv(h', W) + b = y + conv(h' - h, W) = y + conv((h' - h)_S, W[:, S])

Zero padding pads the change with zeros; the other padding modes (``reflect``, ``replicate``, ``circular``) copy
elements, a linear map too, so the change is padded as the input would be. Stride and dilation pick the same
windows of the change as of the input. A grouped convolution reads ``S`` through the group holding it only: its
``out_channels / groups`` outputs change, the others keep the probe's. A row costs ``|S| · K`` multiply-adds per
output element of those groups (``K``: the kernel's elements) where the convolution costs ``in_channels / groups · K``:
one channel of 512 is 1/512 of the product. The windows are taken from the change by ``Tensor.unfold`` (one per
spatial dimension: 1-D, 2-D and 3-D alike) and the product is a batched matrix product per row.

A unit of positions (``unit_dim=-1`` of a ``Conv1d``'s input: a sequence's steps; a ``Conv2d``'s columns or rows)
changes every channel at ``u`` consecutive positions ``p..p+u-1`` of one spatial dimension; under zero padding only
the ``(u - 1 + (k - 1) d) // s + 1`` output positions there whose windows hold one of them change
(:func:`slab_width`), so :func:`add_position_change` convolves the change over the input positions those outputs read
alone (every channel, the other spatial dimensions whole) and adds it into them. The other padding modes copy a
changed edge into the padding, so positions there run the layer.

:class:`~lightning_causal.causal.engine.linear_update.LinearReaders` records and answers these layers beside the
linear ones (exactly ``nn.Conv1d``, ``nn.Conv2d`` and ``nn.Conv3d``, called on a batched input); this module holds
the convolution's own rule and arithmetic.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> conv = nn.Conv2d(4, 3, 3, padding=1, stride=2).double()
    >>> h = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    >>> moved = h.clone(); moved[0, 1] += 1.0; moved[1, 3] *= -2.0  # row 0 changes channel 1, row 1 channel 3
    >>> columns = torch.tensor([[1], [3]])
    >>> delta = moved[torch.arange(2)[:, None], columns] - h[torch.arange(2)[:, None], columns]
    >>> with torch.no_grad():
    ...     out = conv(h)
    ...     add_conv_change(conv, out, delta, columns, conv.weight)
    ...     torch.allclose(out, conv(moved), rtol=0, atol=1e-12)
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["add_conv_change", "add_position_change", "conv_share", "conv_work", "is_conv", "slab_width", "takes_batched"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Multiply-adds of a row's convolution that the update of positions must save at least: below, its gathers and
#: scatter cost more than the product they spare (``benchmarks/bench_conv_update.py --positions``: 8 channels, 3 taps,
#: 128 steps, 24,576 spared: 1.06x the convolution's time; 8 channels, 512 steps, 98,304: 0.53x).
POSITION_MIN_WORK = 65536


def is_conv(module: nn.Module) -> bool:
    """``nn.Conv1d``, ``nn.Conv2d`` or ``nn.Conv3d``, exactly (a subclass may change the product; transposed
    convolutions are other types)."""
    return type(module) in _CONVS


def takes_batched(module: nn.Module, h: Tensor) -> bool:
    """Whether ``module`` reads ``h`` as a batch ``[N, C, *spatial]`` (a ``[C, *spatial]`` input is unbatched: its
    first dimension, the samples, would be the channels)."""
    return h.dim() == len(module.kernel_size) + 2


def slab_width(module: nn.Module, dim: int, unit_size: int) -> int:
    """The output positions along spatial dimension ``dim`` (0: the first spatial one) that a change of ``unit_size``
    consecutive input positions there can reach, at most: ``(unit_size - 1 + (k - 1) d) // s + 1`` (kernel ``k``,
    dilation ``d``, stride ``s``)."""
    k, d, s = module.kernel_size[dim], module.dilation[dim], module.stride[dim]
    return (unit_size - 1 + (k - 1) * d) // s + 1


def conv_share(module: nn.Module, unit_dim: int, unit_size: int, ndim: int, out_shape: tuple[int, ...]) -> float | None:
    """The share of the convolution's product that the update of a row changing one unit computes, where it can
    answer such rows; else ``None``. The caller takes the update where the share is at most ``1 / MAX_SHARE``
    (``linear_update.MAX_SHARE``).

    - Units of the channels (dimension 1), each inside one group: ``unit_size / (in_channels / groups)``.
    - Units of positions along a spatial dimension (``unit_dim=-1`` of a ``Conv1d``'s input: a sequence's steps),
      with zero padding (the other modes copy a changed edge into the padding): the output positions the change can
      reach (:func:`slab_width`) over the output's length there, where the row's product spared is at least
      :data:`POSITION_MIN_WORK` multiply-adds.

    Args:
        module: the convolution.
        unit_dim: the dimension of the changed units (negative counts from the end).
        unit_size: channels (positions) per unit.
        ndim: the dimensions of the convolution's (batched) input.
        out_shape: the shape of the convolution's output (batched).
    """
    nd = len(module.kernel_size)
    if ndim != nd + 2:
        return None
    dim = unit_dim % ndim
    if dim == 1:
        per_group = module.in_channels // module.groups
        return unit_size / per_group if per_group % unit_size == 0 else None
    if dim == 0 or module.padding_mode != "zeros":
        return None
    share = min(1.0, slab_width(module, dim - 2, unit_size) / out_shape[dim])
    return share if conv_work(module, out_shape) * (1.0 - share) >= POSITION_MIN_WORK else None


def conv_work(module: nn.Module, out_shape: Sequence[int]) -> int:
    """The multiply-adds of one row of the convolution ``module`` whose (batched) output is ``out_shape``:
    ``in_channels / groups`` x the kernel's elements x the output's elements per row."""
    return module.in_channels // module.groups * math.prod(module.kernel_size) * math.prod(out_shape[1:])


def _windows(module: nn.Module, delta: Tensor) -> Tensor:
    """``[R, k · K, O]``: the windows of the change ``delta`` ``[R, k, *spatial]`` that the convolution's output
    positions read (``O`` of them, ``K`` elements per channel), padded as the module pads its input."""
    pad = module._reversed_padding_repeated_twice
    if module.padding_mode != "zeros":
        delta = F.pad(delta, pad, mode=module.padding_mode)
    elif any(pad):
        delta = F.pad(delta, pad)
    nd = len(module.kernel_size)
    x = delta
    for i, (k, d, s) in enumerate(zip(module.kernel_size, module.dilation, module.stride)):
        x = x.unfold(2 + i, (k - 1) * d + 1, s)  # the window appended as the last dimension
        if d > 1:
            x = x[..., ::d]
    rows, channels = delta.shape[:2]
    out_shape = x.shape[2:2 + nd]
    x = x.permute(0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))  # [R, k, *kernel, *out]
    return x.reshape(rows, channels * math.prod(module.kernel_size), math.prod(out_shape))


def add_conv_change(module: nn.Module, out: Tensor, delta: Tensor, columns: Tensor, weight: Tensor) -> None:
    """Add ``conv(delta, W[:, S])`` into ``out`` in place: each row's change of its input channels ``columns``.

    Args:
        module: the convolution (its stride, padding, dilation, groups).
        out: ``[R, C_out, *out]`` the rows' probe outputs (a copy the caller owns; contiguous or made so by the caller).
        delta: ``[R, k, *spatial]`` the change of each row's channels ``columns``.
        columns: ``[R, k]`` the input channels each row changes, all in one group per row.
        weight: the module's weight ``[C_out, C_in / groups, *kernel]``, contiguous.
    """
    r, k = columns.shape
    groups = module.groups
    per_group, out_group = module.in_channels // groups, module.out_channels // groups
    w = weight.view(groups, out_group, per_group, -1)
    group = columns[:, 0] // per_group  # [R]
    w = w[group[:, None], :, columns - (group * per_group)[:, None]]  # [R, k, out_group, K]
    w = w.transpose(1, 2).reshape(r, out_group, -1).to(delta.dtype)  # [R, out_group, k·K]
    windows = _windows(module, delta)
    flat = out.view(r, module.out_channels, -1)
    if groups == 1:
        flat.baddbmm_(w, windows)
    else:  # the rows' own group of outputs only
        flat.view(r, groups, out_group, -1)[torch.arange(r, device=out.device), group] += torch.bmm(w, windows)


def add_position_change(module: nn.Module, out: Tensor, h: Tensor, value: Tensor, rows: Tensor, positions: Tensor,
                        dim: int) -> None:
    """Add the change of each row's input positions ``positions`` along dimension ``dim`` into ``out`` in place: only
    the output positions those input positions reach (:func:`slab_width` of them a row, from
    ``ceil((p + pad - (k - 1) d) / s)`` for the unit's first position ``p``, ``pad`` the module's padding before the
    positions), computed as ``conv(h' - h)`` over the window of input positions that they read, every channel and the
    other spatial dimensions whole (padded with zeros there as the module pads). Zero padding only
    (:func:`conv_share`).

    Args:
        module: the convolution (its stride, padding, dilation, groups).
        out: ``[R, C_out, *out]`` the rows' probe outputs (a contiguous copy the caller owns).
        h: ``[R, C_in, *spatial]`` the rows' intervened input.
        value: ``[N, C_in, *spatial]`` the probe's input of the convolution.
        rows: ``[R]`` the probe sample of each row.
        positions: ``[R, k]`` the consecutive positions each row changes (its unit's).
        dim: the dimension of the positions (2 or later).
    """
    nd, r = len(module.kernel_size), h.shape[0]
    i = dim - 2
    k, d, s = module.kernel_size[i], module.dilation[i], module.stride[i]
    pads = list(module._reversed_padding_repeated_twice)
    before = pads[2 * (nd - 1 - i)]
    pads[2 * (nd - 1 - i)] = pads[2 * (nd - 1 - i) + 1] = 0  # the window is cut along dim; the others padded below
    width = slab_width(module, i, positions.shape[1])
    first = torch.div(-(positions[:, 0] + before - (k - 1) * d), s, rounding_mode="floor").neg()  # [R] first output
    read = (first * s - before)[:, None] + torch.arange((width - 1) * s + (k - 1) * d + 1, device=h.device)  # [R, L]
    inside = (read >= 0) & (read < h.shape[dim])
    read = read.clamp(0, h.shape[dim] - 1)
    ar = torch.arange(r, device=h.device)[:, None]
    # [R, L, C, *other]: advanced indices apart put their dimensions first
    delta = h.movedim(dim, -1)[ar, ..., read] - value.movedim(dim, -1)[rows[:, None], ..., read]
    delta = delta.masked_fill_(~inside.view(r, -1, *([1] * (h.dim() - 2))), 0.0).movedim(1, -1).movedim(-1, dim)
    if any(pads):
        delta = F.pad(delta, pads)
    change = _CONV_FUNCTIONS[nd](delta, module.weight.to(delta.dtype), None, module.stride, 0, module.dilation,
                                 module.groups)  # [R, C_out, *out] with `width` positions along dim
    reached = first[:, None] + torch.arange(width, device=h.device)  # [R, width]
    shape = [r] + [1] * (out.dim() - 1)
    shape[dim] = width
    valid = ((reached >= 0) & (reached < out.shape[dim])).view(shape)
    out.scatter_add_(dim, reached.clamp(0, out.shape[dim] - 1).view(shape).expand_as(change), change * valid)


_CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
