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

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["add_conv_change", "conv_width", "is_conv", "takes_batched"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def is_conv(module: nn.Module) -> bool:
    """``nn.Conv1d``, ``nn.Conv2d`` or ``nn.Conv3d``, exactly (a subclass may change the product; transposed
    convolutions are other types)."""
    return type(module) in _CONVS


def takes_batched(module: nn.Module, h: Tensor) -> bool:
    """Whether ``module`` reads ``h`` as a batch ``[N, C, *spatial]`` (a ``[C, *spatial]`` input is unbatched: its
    first dimension, the samples, would be the channels)."""
    return h.dim() == len(module.kernel_size) + 2


def conv_width(module: nn.Module, unit_dim: int, unit_size: int, ndim: int) -> int:
    """The input channels of one group (``in_channels / groups``) where rows that change one unit (``unit_size``
    channels) of dimension ``unit_dim`` of an input of ``ndim`` dimensions can be answered by the update: units of the
    channels (dimension 1), each inside one group; else 0. The caller weighs the unit against this width
    (``linear_update.MAX_SHARE``).

    Args:
        module: the convolution.
        unit_dim: the dimension of the changed units (negative counts from the end).
        unit_size: channels per unit.
        ndim: the dimensions of the convolution's (batched) input.
    """
    per_group = module.in_channels // module.groups
    fits = ndim == len(module.kernel_size) + 2 and unit_dim % ndim == 1 and per_group % unit_size == 0
    return per_group if fits else 0


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
