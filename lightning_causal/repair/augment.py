"""Augmented copies of a clean batch for repair terms: more inputs on which the repaired model is
held to the model before repair (function matching, Beyer et al. 2022), drawn from a private
generator.

- ``"mixup"``: ``λ·x_i + (1 − λ)·x_j`` with ``j`` a random row of the same batch and
  ``λ ~ U(0, 1)`` per row (Zhang et al. 2018), for any floating-point inputs;
- ``"shift"``: each image moved by one pixel or none in each direction (zero padded), for image
  batches ``[N, C, H, W]``;
- ``"patch"``: each image with a small random stamp (:func:`patched`), for image batches. A term
  holds the model's prediction on such a copy to the one *before* repair on its unstamped source
  (:data:`INVARIANT`: a small stamp should say nothing), which trains away a response to stamps
  that no detection flagged (opt-in: ``augment="mixup+shift+patch"``).

Each copy remembers its source rows (``(i, j)``; ``(i, i)`` for a shift or a stamp), so that a term
can tell which labels an augmented row mixes. The copies come kind after kind, ``N`` rows each, in
the order of the kinds. The draws are made on the host by the CPU generator (the same copies on any device) and
copied to the batch's device once a kind (CUDA: from pinned memory, without waiting for the device).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["AUGMENTATIONS", "INVARIANT", "augmented_copies", "patched", "resolve_augment", "shifted"]

AUGMENTATIONS = ("mixup", "shift", "patch")
#: Kinds whose copies are held to the source row's prediction before repair (not their own).
INVARIANT = ("patch",)
#: Largest side of a :func:`patched` stamp's box, in pixels.
PATCH_SIDE = 3


def resolve_augment(augment: str | None, x: Tensor) -> tuple[str, ...]:
    """The augmentations of ``augment`` for the batch ``x``: ``"auto"`` is mixup plus shifts for
    image batches ``[N, C, H, W]`` and mixup otherwise; ``None`` or ``"none"``: no copies; else
    names joined by ``+`` (e.g. ``"mixup+shift+patch"``; a name twice gives two copies of that kind).

    Raises:
        ValueError: an unknown name, or ``"shift"``/``"patch"`` for inputs that are not ``[N, C, H, W]``.

    Examples:
        >>> resolve_augment("auto", torch.zeros(2, 1, 4, 4)), resolve_augment("auto", torch.zeros(2, 3))
        (('mixup', 'shift'), ('mixup',))
    """
    if augment is None or augment == "none":
        return ()
    if augment == "auto":
        return ("mixup", "shift") if x.dim() == 4 else ("mixup",)
    kinds = tuple(augment.split("+")) if isinstance(augment, str) else ()
    if not kinds or any(k not in AUGMENTATIONS for k in kinds):
        raise ValueError(f"Expected argument `augment` to be None, 'none', 'auto' or names from {AUGMENTATIONS} joined by '+' but got {augment!r}")
    for kind in ("shift", "patch"):
        if kind in kinds and x.dim() != 4:
            raise ValueError(f"Expected image inputs [N, C, H, W] for the {kind!r} augmentation but got {list(x.shape)}")
    return kinds


def _to_device(draws: Tensor, device: torch.device) -> Tensor:
    """``draws`` made on the host (the private generator is a CPU one) on ``device``: as they are on the CPU; on a
    CUDA device through pinned memory without blocking, since a copy from pageable memory waits for the device's
    queued work first (one wait a copy, every training step); elsewhere (MPS, XPU) a plain copy."""
    if draws.device == device:
        return draws
    if device.type == "cuda":
        return draws.pin_memory().to(device, non_blocking=True)
    return draws.to(device)


def shifted(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Images ``x`` ``[N, C, H, W]`` moved by ``(dy_i, dx_i)`` pixels each (values in {-1, 0, 1}), zero padded.

    Examples:
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)
        >>> shifted(x, torch.tensor([0]), torch.tensor([1]))[0, 0]  # content moves one pixel right
        tensor([[0., 0.],
                [0., 2.]])
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    rows = (torch.arange(h, device=x.device).view(1, h) + 1 - dy.view(n, 1)).view(n, 1, h, 1)
    cols = (torch.arange(w, device=x.device).view(1, w) + 1 - dx.view(n, 1)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, chan, rows, cols]


def patched(x: Tensor, generator: torch.Generator) -> Tensor:
    """Images ``x`` ``[N, C, H, W]``, each with a random stamp: a box of ``h x w`` pixels (each side
    drawn from 1 to :data:`PATCH_SIDE`) at a random place, whose pixels are all set (half the rows)
    or each set with probability 1/2 (at least one), in every channel, to one value: the batch's
    minimum or its maximum. Every other pixel is the image's own.

    The stamps are of the kind backdoors use (BadNets' white square, Gu et al. 2017; a few pixels
    in a corner), drawn anywhere: a model before repair that answers one of them with a class the
    unstamped image does not have holds a response to stamps.

    Examples:
        >>> x = torch.full((3, 1, 8, 8), 0.5); x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
        >>> y = patched(x, torch.Generator().manual_seed(0))
        >>> changed = (y != x).flatten(1).sum(1)
        >>> bool(((changed >= 1) & (changed <= 9)).all()), set(y[x != y].tolist()) <= {0.0, 1.0}
        (True, True)
    """
    n, c, h, w = x.shape
    k = PATCH_SIDE
    lo, hi = x.amin(), x.amax()
    bh, bw = (torch.randint(1, min(k, side) + 1, (n,), generator=generator) for side in (h, w))
    y0 = (torch.rand(n, generator=generator) * (h - bh + 1)).long()
    x0 = (torch.rand(n, generator=generator) * (w - bw + 1)).long()
    solid = torch.rand(n, generator=generator) < 0.5
    grid = torch.arange(k)
    inside = (grid.view(1, k, 1) < bh.view(n, 1, 1)) & (grid.view(1, 1, k) < bw.view(n, 1, 1))
    on = ((torch.rand(n, k, k, generator=generator) < 0.5) | solid.view(n, 1, 1)) & inside
    on[:, 0, 0] |= ~on.flatten(1).any(1)  # at least one pixel
    low = (torch.rand(n, generator=generator) < 0.5).view(n, 1, 1).expand(n, k, k)
    # the stamped pixels chosen on the host, where the draws are; one copy to the device of (row, i, j, low or high)
    bijl = torch.stack([torch.arange(n).view(n, 1, 1).expand(n, k, k), (y0.view(n, 1, 1) + grid.view(1, k, 1)).expand(n, k, k),
                        (x0.view(n, 1, 1) + grid.view(1, 1, k)).expand(n, k, k), low.long()])[:, on]
    b, i, j, low_on = _to_device(bijl, x.device).unbind(0)
    value = torch.where(low_on.bool(), lo, hi).to(x.dtype)
    out = x.clone()
    out[b, :, i, j] = value.unsqueeze(1).expand(-1, c)
    return out


def augmented_copies(x: Tensor, kinds: tuple[str, ...], generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """One augmented copy of every row of ``x`` per kind: ``(copies [K·N, ...], source_a, source_b)``.

    Examples:
        >>> x = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
        >>> copies, a, b = augmented_copies(x, ("mixup",), torch.Generator().manual_seed(0))
        >>> copies.shape, bool(((copies >= 0) & (copies <= 1)).all()), a.tolist()
        (torch.Size([2, 1, 2, 2]), True, [0, 1])
    """
    n, dev = x.shape[0], x.device
    rows = torch.arange(n, device=dev)
    copies, src_a, src_b = [], [], []
    for kind in kinds:
        if kind == "mixup":
            lam = _to_device(torch.rand(n, generator=generator), dev).to(x.dtype).view(n, *([1] * (x.dim() - 1)))
            partner = _to_device(torch.randperm(n, generator=generator), dev)
            copies.append(lam * x + (1 - lam) * x[partner])
            src_a.append(rows)
            src_b.append(partner)
        elif kind == "patch":
            copies.append(patched(x, generator))
            src_a.append(rows)
            src_b.append(rows)
        else:
            dy, dx = _to_device(torch.stack([torch.randint(-1, 2, (n,), generator=generator) for _ in range(2)]), dev)
            copies.append(shifted(x, dy, dx))
            src_a.append(rows)
            src_b.append(rows)
    if not copies:
        return x[:0], rows[:0], rows[:0]
    return torch.cat(copies), torch.cat(src_a), torch.cat(src_b)
