"""Feature groups (Captum's ``feature_mask`` convention): integer group ids broadcastable to the
input, groups numbered ``0 .. G-1``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["patch_mask", "column_mask", "element_mask", "num_groups", "check_feature_mask", "make_feature_mask"]


def patch_mask(shape: Sequence[int], patch_size: int) -> Tensor:
    """Square patches of an image of ``shape`` = ``(C, H, W)`` or ``(H, W)``; channels share a patch.

    Returns a ``LongTensor`` of shape ``[1, *shape]`` numbering patches row by row.

    Examples:
        >>> patch_mask((1, 4, 4), 2)[0, 0]
        tensor([[0, 0, 1, 1],
                [0, 0, 1, 1],
                [2, 2, 3, 3],
                [2, 2, 3, 3]])
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"Expected argument `shape` to be (C, H, W) or (H, W) but got {shape}")
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"Expected argument `patch_size` to be a positive int but got {patch_size!r}")
    h, w = shape[-2:]
    cols = -(-w // patch_size)
    rows = torch.arange(h) // patch_size
    colsi = torch.arange(w) // patch_size
    grid = rows.view(-1, 1) * cols + colsi.view(1, -1)
    return grid.expand(shape).clone().unsqueeze(0)


def column_mask(num_columns: int) -> Tensor:
    """One group per column of a tabular input ``[N, D]``: ``[[0, 1, ..., D-1]]``."""
    if isinstance(num_columns, bool) or not isinstance(num_columns, int) or num_columns < 1:
        raise ValueError(f"Expected argument `num_columns` to be a positive int but got {num_columns!r}")
    return torch.arange(num_columns).unsqueeze(0)


def element_mask(shape: Sequence[int]) -> Tensor:
    """One group per input element of a sample of ``shape``."""
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    return torch.arange(n).view(1, *shape)


def num_groups(masks: Tensor | tuple[Tensor, ...]) -> int:
    """``max id + 1`` over all masks."""
    masks = masks if isinstance(masks, tuple) else (masks,)
    return int(max(int(m.max()) for m in masks)) + 1


def check_feature_mask(inputs: tuple[Tensor, ...], feature_mask: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Validate a feature mask against ``inputs`` and return it as a tuple of long tensors."""
    masks = feature_mask if isinstance(feature_mask, tuple) else (feature_mask,)
    if len(masks) != len(inputs) or not all(isinstance(m, Tensor) for m in masks):
        raise ValueError(
            f"Expected argument `feature_mask` to be a tensor per input ({len(inputs)}) but got {len(masks)} "
            f"of types {[type(m).__name__ for m in masks]}"
        )
    out = []
    for x, m in zip(inputs, masks):
        if m.is_floating_point() or m.dtype == torch.bool:
            raise TypeError(f"Expected argument `feature_mask` to hold integer group ids but got dtype {m.dtype}")
        if m.dim() != x.dim() or m.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                f"Expected argument `feature_mask` of shape [1 or {x.shape[0]}, ...] broadcastable to the input "
                f"{list(x.shape)} but got {list(m.shape)}"
            )
        try:
            torch.broadcast_shapes(m.shape, x.shape)
        except RuntimeError as err:
            raise ValueError(
                f"Expected argument `feature_mask` broadcastable to the input {list(x.shape)} but got {list(m.shape)}"
            ) from err
        if (m < 0).any():
            raise ValueError("Expected argument `feature_mask` to hold non-negative group ids but found negatives")
        out.append(m.to(device=x.device, dtype=torch.long))
    return tuple(out)


def make_feature_mask(
    sample_shape: Sequence[int], feature_mask: Tensor | None = None, patch_size: int | None = None
) -> Tensor:
    """Groups from an explicit ``feature_mask``, from ``patch_size`` (images), or one per element.

    Examples:
        >>> make_feature_mask((3,))
        tensor([[0, 1, 2]])
    """
    if feature_mask is not None and patch_size is not None:
        raise ValueError("Expected at most one of `feature_mask` and `patch_size` but got both")
    if feature_mask is not None:
        return feature_mask.long()
    if patch_size is not None:
        return patch_mask(tuple(sample_shape), patch_size)
    return element_mask(sample_shape)
