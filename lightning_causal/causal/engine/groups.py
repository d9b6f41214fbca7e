"""Feature groups (Captum's ``feature_mask`` convention): integer group ids broadcastable to the
input, groups numbered ``0 .. G-1``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = [
    "patch_mask",
    "column_mask",
    "element_mask",
    "num_groups",
    "default_feature_mask",
    "check_feature_mask",
    "check_patch_inputs",
    "make_feature_mask",
    "group_mask",
    "aggregate_to_groups",
    "broadcast_groups",
    "group_counts",
]


def patch_mask(shape: Sequence[int], patch_size: int) -> Tensor:
    """Square patches of an image of ``shape`` = ``(C, H, W)`` or ``(H, W)``, or cubes of a volume (or a
    video) of ``shape`` = ``(C, D, H, W)``, as ``Conv3d`` takes it; channels share a patch.

    Returns a ``LongTensor`` of shape ``[1, *shape]`` numbering patches row by row (cubes: depth, then
    row, then column; cubes of side 8 of a 16^3 volume are its octants ``0 .. 7``).

    Args:
        shape: one sample's shape, ``(C, H, W)``, ``(H, W)`` or ``(C, D, H, W)``, every size at least 1.
        patch_size: side of a square patch (a cube) in pixels (an integer >= 1); the patches of the last
            row and column (and depth) are cut short where a size is not a multiple of it.

    Examples:
        >>> patch_mask((1, 4, 4), 2)[0, 0]
        tensor([[0, 0, 1, 1],
                [0, 0, 1, 1],
                [2, 2, 3, 3],
                [2, 2, 3, 3]])
        >>> patch_mask((1, 4, 2, 2), 2)[0, 0, :, 0, 0]  # cubes of a volume: depth 0-1, then depth 2-3
        tensor([0, 0, 1, 1])
    """
    if isinstance(shape, (int, float)) or not hasattr(shape, "__len__"):
        raise TypeError(f"Expected argument `shape` to be (C, H, W), (H, W) or (C, D, H, W) but got {shape!r}")
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3, 4) or min(shape) < 1:
        raise ValueError(f"Expected argument `shape` to be (C, H, W), (H, W) or (C, D, H, W) but got {shape}")
    check_int("patch_size", patch_size, minimum=1)
    grid = torch.zeros((), dtype=torch.long)
    for size in shape[-3 if len(shape) == 4 else -2:]:  # row-major over the patch grid, one spatial axis at a time
        grid = grid.unsqueeze(-1) * -(-size // patch_size) + torch.arange(size) // patch_size
    return grid.expand(shape).clone().unsqueeze(0)


def column_mask(num_columns: int) -> Tensor:
    """One group per column of a tabular input ``[N, D]``: ``[[0, 1, ..., D-1]]``.

    Args:
        num_columns: the number of columns ``D`` (an integer >= 1).

    Examples:
        >>> column_mask(3)
        tensor([[0, 1, 2]])
    """
    check_int("num_columns", num_columns, minimum=1)
    return torch.arange(num_columns).unsqueeze(0)


def element_mask(shape: Sequence[int]) -> Tensor:
    """One group per input element of a sample of ``shape``: ``[1, *shape]`` ids ``0 .. prod(shape)-1``
    in row-major order.

    Args:
        shape: one sample's shape (without the batch dimension).

    Examples:
        >>> element_mask((2, 3))
        tensor([[[0, 1, 2],
                 [3, 4, 5]]])
    """
    if isinstance(shape, int) or not all(hasattr(s, "__index__") and not isinstance(s, bool) and s.__index__() >= 0 for s in shape):
        raise (TypeError if isinstance(shape, int) else ValueError)(
            f"Expected argument `shape` to be one sample's shape, a sequence of non-negative ints, but got {shape!r}")
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    return torch.arange(n).view(1, *shape)


def num_groups(masks: Tensor | tuple[Tensor, ...]) -> int:
    """``max id + 1`` over all masks.

    Args:
        masks: a feature mask of integer group ids, or a tuple of them (one per input).

    Examples:
        >>> import torch
        >>> num_groups(torch.tensor([[0, 0, 2]]))
        3
        >>> num_groups((torch.tensor([[0, 1]]), torch.tensor([[4]])))
        5
    """
    masks = masks if isinstance(masks, tuple) else (masks,)
    for m in masks:
        _check_integer_mask(m)
        if m.numel() == 0:
            raise ValueError("Expected argument `feature_mask` to hold group ids but got an empty tensor")
    return int(max(int(m.max()) for m in masks)) + 1


def default_feature_mask(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """One group per input element, numbered across the inputs in order (Captum's default).

    Args:
        inputs: the inputs ``[N, ...]``; each mask is ``[1, *x.shape[1:]]`` on its input's device.

    Examples:
        >>> default_feature_mask((torch.zeros(5, 2), torch.zeros(5, 1)))
        (tensor([[0, 1]]), tensor([[2]]))
    """
    out, offset = [], 0
    for x in inputs:
        m = element_mask(x.shape[1:]).to(x.device) + offset
        offset += int(m.numel())
        out.append(m)
    return tuple(out)


def check_feature_mask(inputs: tuple[Tensor, ...], feature_mask: Tensor | tuple[Tensor, ...] | None) -> tuple[Tensor, ...]:
    """Validate a feature mask against ``inputs`` and return it as a tuple of long tensors
    (``None``: one group per element, :func:`default_feature_mask`). A mask with fewer dimensions
    than its input is broadcast as NumPy does, from the last dimension (``[C, L]`` for inputs
    ``[N, C, L]``: one sample's groups).

    Args:
        inputs: the model's inputs ``[N, ...]``, one tensor per positional input.
        feature_mask: one integer tensor of non-negative group ids per input (a single tensor for
            one input), each ``[1 or N, ...]`` broadcastable to its input, or fewer dimensions as
            said above; ``None`` for one group per element.

    Raises:
        ValueError: a mask count, shape or negative id that does not fit ``inputs``.
        TypeError: a float or boolean mask.

    Examples:
        >>> check_feature_mask((torch.zeros(4, 2, 3),), torch.tensor([0, 1, 1]))[0].shape
        torch.Size([1, 1, 3])
    """
    if feature_mask is None:
        return default_feature_mask(inputs)
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
        if m.dim() < x.dim():
            m = m.reshape((1,) * (x.dim() - m.dim()) + tuple(m.shape))
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
    _warn_shared_ids(out)
    return tuple(out)


def _warn_shared_ids(masks: list[Tensor]) -> None:
    """Warn when the group ids of one input's mask all reappear in another's: each mask numbered from
    0 (``(quadrants 0..3, columns 0..4)``), which joins quadrant g and column g into one group that
    sets both inputs at once (Captum's convention for ids shared across inputs), so the effect of
    "column 0" is that of column 0 and quadrant 0 together, silently. A few ids shared on purpose
    (a joint group across inputs) are not warned of."""
    ids = [set(m.unique().tolist()) for m in masks]
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            if ids[a] and ids[b] and (ids[a] <= ids[b] or ids[b] <= ids[a]):
                shared = sorted(ids[a] & ids[b])
                shown = ", ".join(map(str, shared[:6])) + (" ..." if len(shared) > 6 else "")
                warnings.warn(
                    f"The feature masks of inputs {a} and {b} use the same group ids ({shown}): an id in several inputs is "
                    "one group that sets all of them at once (Captum's convention), so each of these groups' effects is "
                    f"that of both inputs' elements together. For a group per input, number input {b}'s groups after "
                    f"input {a}'s (`mask_{b} + {max(ids[a]) + 1}`)", UserWarning, stacklevel=outside_package())
                return


def _check_integer_mask(feature_mask: object) -> None:
    if not isinstance(feature_mask, Tensor):
        raise TypeError(f"Expected argument `feature_mask` to be an integer tensor but got {type(feature_mask).__name__}")
    if feature_mask.is_floating_point() or feature_mask.is_complex() or feature_mask.dtype == torch.bool:
        raise TypeError(f"Expected argument `feature_mask` to hold integer group ids but got dtype {feature_mask.dtype}")


def make_feature_mask(
    sample_shape: Sequence[int], feature_mask: Tensor | None = None, patch_size: int | None = None
) -> Tensor:
    """Groups from an explicit ``feature_mask``, from ``patch_size`` (images), or one per element.

    Args:
        sample_shape: one sample's shape (without the batch dimension).
        feature_mask: integer group ids, returned as given (checked only for an integer dtype).
        patch_size: square patches of this side (:func:`patch_mask`; ``sample_shape`` is
            ``(C, H, W)`` or ``(H, W)``), or cubes (``(C, D, H, W)``). At most one of ``feature_mask`` and ``patch_size``; with
            neither, one group per element (:func:`element_mask`).

    Examples:
        >>> make_feature_mask((3,))
        tensor([[0, 1, 2]])
    """
    if feature_mask is not None and patch_size is not None:
        raise ValueError("Expected at most one of `feature_mask` and `patch_size` but got both")
    if feature_mask is not None:
        _check_integer_mask(feature_mask)
        return feature_mask
    if patch_size is not None:
        return patch_mask(tuple(sample_shape), patch_size)
    return element_mask(sample_shape)


#: the way out of `patch_size` on flattened images, `[N, H * W]` (sklearn's digits, `[N, 64]`)
FLAT_IMAGE_HINT = (
    "; a flattened image (sklearn's digits, [N, 64]) takes its patches as `feature_mask=`, one group id per column: "
    "`r, c = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij'); "
    "feature_mask = ((r // p) * ((W + p - 1) // p) + c // p).flatten()` for patches of side p")


def check_patch_inputs(inputs: Tensor, patch_size: int | None) -> None:
    """Refuse ``patch_size`` on an input ``[N, ...]`` that is no image ``[N, C, H, W]`` or ``[N, H, W]`` nor volume
    ``[N, C, D, H, W]`` (a flattened image told how to take its patches as ``feature_mask=``: :data:`FLAT_IMAGE_HINT`).

    Args:
        inputs: one input ``[N, ...]``.
        patch_size: side of square patches (cubes for volumes); ``None`` takes any input.

    Raises:
        ValueError: ``patch_size`` given for an input of another number of dimensions.

    Examples:
        >>> check_patch_inputs(torch.zeros(2, 1, 4, 4), 2)
        >>> try:
        ...     check_patch_inputs(torch.zeros(2, 64), 2)
        ... except ValueError as err:
        ...     print(str(err).split(";")[0])
        Expected image inputs [N, C, H, W] or [N, H, W], or volumes [N, C, D, H, W], with `patch_size` but got shape [2, 64]
    """
    if patch_size is not None and inputs.dim() not in (3, 4, 5):
        raise ValueError("Expected image inputs [N, C, H, W] or [N, H, W], or volumes [N, C, D, H, W], with `patch_size` "
                         f"but got shape {list(inputs.shape)}{FLAT_IMAGE_HINT if inputs.dim() == 2 else ''}")


def group_mask(inputs: Tensor, feature_mask: Tensor | None = None, patch_size: int | None = None) -> Tensor:
    """The feature groups of one input ``[N, ...]``, on its device, shaped ``[1 or N, ...]``:
    an explicit ``feature_mask`` (one sample's shape or the input's), square patches of
    ``patch_size`` (images ``[N, C, H, W]`` or ``[N, H, W]``; cubes of volumes ``[N, C, D, H, W]``), or one
    group per element.

    This is how every audit resolves ``feature_mask=`` / ``patch_size=``.

    Args:
        inputs: one input ``[N, ...]``.
        feature_mask: integer group ids, one sample's shape or ``[1 or N, ...]`` (as in
            :func:`check_feature_mask`); ``None``: ``patch_size`` or one group per element.
        patch_size: side of square patches for image inputs (cubes for volumes); at most one of
            ``feature_mask`` and ``patch_size``.

    Examples:
        >>> group_mask(torch.zeros(2, 1, 4, 4), patch_size=2).shape
        torch.Size([1, 1, 4, 4])
        >>> group_mask(torch.zeros(2, 3))
        tensor([[0, 1, 2]])
    """
    if not isinstance(inputs, Tensor):
        raise TypeError(f"Expected argument `inputs` to be a tensor [N, ...] but got {type(inputs).__name__}")
    check_patch_inputs(inputs, patch_size)
    mask = make_feature_mask(inputs.shape[1:], feature_mask, patch_size)
    if mask.dim() == inputs.dim() - 1:
        mask = mask.unsqueeze(0)
    return check_feature_mask((inputs,), mask.to(inputs.device))[0]


def flat_mask(feature_mask: Tensor, shape: torch.Size) -> Tensor:
    """``[1 or N, D]`` group ids of each input element (``D`` = elements per sample, row-major).

    Args:
        feature_mask: integer group ids ``[1 or N, ...]`` broadcastable to ``shape`` (or one
            sample's shape), non-negative.
        shape: the full shape of the input or map ``[N, ...]``.
    """
    if not isinstance(feature_mask, Tensor) or feature_mask.is_floating_point() or feature_mask.dtype == torch.bool:
        raise TypeError(f"Expected argument `feature_mask` to be an integer tensor but got {feature_mask!r:.60}")
    m = feature_mask
    if m.dim() == len(shape) - 1:
        m = m.unsqueeze(0)
    try:
        full = torch.broadcast_shapes(m.shape, shape)
    except RuntimeError as err:
        raise ValueError(f"Expected argument `feature_mask` broadcastable to {list(shape)} but got {list(m.shape)}") from err
    if full != shape or m.shape[0] not in (1, shape[0]):
        raise ValueError(f"Expected argument `feature_mask` broadcastable to {list(shape)} but got {list(m.shape)}")
    if (m < 0).any():
        raise ValueError("Expected argument `feature_mask` to hold non-negative group ids but found negatives")
    return m.expand(m.shape[0], *shape[1:]).reshape(m.shape[0], -1).long()


def aggregate_to_groups(
    attributions: Tensor, feature_mask: Tensor, reduction: Literal["sum", "mean"] = "sum", num_groups: int | None = None
) -> Tensor:
    """Per-group scores ``[N, G]`` of a map shaped like the input: ``s_g = Σ_{i ∈ g} a_i``
    (``"sum"``, for per-element attributions) or the mean over the group (``"mean"``, for maps
    that already give every element its group's value, e.g. ``FeatureAblation`` with a mask).

    Args:
        attributions: the map ``[N, ...]``, shaped like the input.
        feature_mask: integer group ids broadcastable to ``attributions`` (as in :func:`flat_mask`).
        reduction: ``"sum"`` or ``"mean"``, as above.
        num_groups: ``G``, the number of columns of the result; ``None``: the mask's largest id + 1
            (give it when the last groups may be absent from the mask).

    Examples:
        >>> aggregate_to_groups(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0, 0, 1]]))
        tensor([[3., 3.]])
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"Expected argument `reduction` to be 'sum' or 'mean' but got {reduction!r}")
    if not isinstance(attributions, Tensor):
        raise TypeError(f"Expected argument `attributions` to be a tensor [N, ...] but got {type(attributions).__name__}")
    m = flat_mask(feature_mask, attributions.shape).to(attributions.device)
    needed = int(m.max()) + 1 if m.numel() else 0
    if num_groups is not None:
        check_int("num_groups", num_groups, minimum=max(1, needed))
    g = num_groups if num_groups is not None else needed
    vals = attributions.reshape(attributions.shape[0], -1)
    idx = m.expand(vals.shape[0], -1)
    out = torch.zeros(vals.shape[0], g, dtype=vals.dtype, device=vals.device).scatter_add_(1, idx, vals)
    if reduction == "mean":
        count = torch.zeros_like(out).scatter_add_(1, idx, torch.ones_like(vals))
        out = out / count.clamp_min(1)
    return out


def broadcast_groups(values: Tensor, feature_mask: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
    """Group scores ``[N, G]`` spread back over an input of ``shape`` (each element gets its group's score).

    Args:
        values: group scores ``[N, G]``.
        feature_mask: integer group ids broadcastable to ``shape`` (as in :func:`flat_mask`), each
            id below ``G``.
        shape: the shape ``[N, ...]`` of the result.

    Examples:
        >>> broadcast_groups(torch.tensor([[5.0, 7.0]]), torch.tensor([[0, 0, 1]]), (1, 3))
        tensor([[5., 5., 7.]])
    """
    shape = torch.Size(shape)
    m = flat_mask(feature_mask, shape)
    needed = int(m.max()) + 1 if m.numel() else 0
    if not isinstance(values, Tensor) or values.dim() != 2 or values.shape[0] != shape[0] or values.shape[1] < needed:
        raise ValueError(f"Expected argument `values` to be group scores [{shape[0]}, G >= {needed}] (the mask's ids 0 .. {needed - 1}) "
                         f"but got {list(values.shape) if isinstance(values, Tensor) else type(values).__name__}")
    m = m.to(values.device)
    return values.gather(1, m.expand(values.shape[0], -1)).view(shape)


def group_counts(
    inputs: Tensor | tuple[Tensor, ...],
    feature_mask: Tensor | tuple[Tensor, ...],
    num_groups: int | None = None,
    keep: Tensor | tuple[Tensor | None, ...] | None = None,
) -> Tensor:
    """How many elements of each sample each group holds, over all inputs: ``[N, G]`` integers,

    .. math:: c_{n,g} = \\sum_k \\#\\{i : m^{(k)}_{n,i} = g,\\ \\mathrm{keep}^{(k)}_{n,i}\\}

    where ``m^{(k)}`` is the mask of input ``k`` (shared ``[1, ...]`` or per sample ``[N, ...]``)
    and ``keep`` (booleans broadcastable to the input, one per input or ``None``) says which
    elements count (e.g. not padding). A group that a sample does not have, or whose elements all
    lie outside ``keep``, counts 0 there; ``c_{n,g} > 0`` says whether group ``g`` is real in
    sample ``n``.

    Args:
        inputs: a tensor ``[N, ...]`` or a tuple of tensors sharing ``N``.
        feature_mask: integer group ids, one mask per input, each broadcastable to its input.
        num_groups: ``G`` (default ``max id + 1`` over the masks); every id must be below it.
        keep: which elements count (default: all of them).

    Examples:
        >>> ids = torch.zeros(2, 4, dtype=torch.long)
        >>> words = torch.tensor([[0, 0, 1, 2], [0, 1, 1, 1]])  # per-sample groups
        >>> group_counts(ids, words, keep=torch.tensor([[True, True, True, False], [True, True, True, True]]))
        tensor([[2, 1, 0],
                [1, 3, 0]])
    """
    xs = inputs if isinstance(inputs, tuple) else (inputs,)
    masks = feature_mask if isinstance(feature_mask, tuple) else (feature_mask,)
    keeps = (None,) * len(xs) if keep is None else keep if isinstance(keep, tuple) else (keep,)
    if not xs or not all(isinstance(x, Tensor) and x.dim() >= 1 for x in xs):
        raise TypeError(f"Expected argument `inputs` to be a tensor [N, ...] or a tuple of them but got {inputs!r:.80}")
    if len(masks) != len(xs) or len(keeps) != len(xs):
        raise ValueError(f"Expected argument `feature_mask` (and `keep`) to give one tensor per input ({len(xs)}) but got "
                         f"{len(masks)} masks and {len(keeps)} keep masks")
    n = xs[0].shape[0]
    flats = [flat_mask(m, x.shape).to(x.device) for x, m in zip(xs, masks)]
    top = max((int(f.max()) + 1 for f in flats if f.numel()), default=0)
    g = top if num_groups is None else check_int("num_groups", num_groups, minimum=0)
    if top > g:
        raise ValueError(f"Expected argument `num_groups` above every group id (at least {top}) but got {g}")
    counts = torch.zeros(n, g, dtype=torch.long, device=xs[0].device)
    for x, f, k in zip(xs, flats, keeps):
        if k is None:
            weight = torch.ones_like(f)
        else:
            if not isinstance(k, Tensor) or k.dtype != torch.bool or k.dim() != x.dim() or k.shape[0] not in (1, n):
                raise ValueError(f"Expected argument `keep` to be booleans [1 or {n}, ...] broadcastable to the input "
                                 f"{list(x.shape)} but got {k!r:.80}")
            f = f.expand(n, -1)
            weight = k.to(x.device).expand(x.shape).reshape(n, -1).long()
        counts += torch.zeros(f.shape[0], g, dtype=torch.long, device=x.device).scatter_add_(1, f, weight)
    return counts
