"""Linear CKA (Kornblith et al. 2019) and the merging of contiguous layers by it, for the layer causal map
(:func:`~lightning_causal.causal.structure.layer_map.layer_causal_map`): :func:`linear_cka` of two
representations, :func:`gram_cka` of many from their centred Gram matrices, the layers no intervention
reaches left undefined (:func:`without_rounding_profiles`) and the complete-linkage merge of neighbours
(:func:`merge_contiguous`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["CKA_ROUNDING", "MIN_CKA_ROWS", "gram_cka", "linear_cka", "merge_contiguous", "unmoved_layers", "without_rounding_profiles"]


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear centred kernel alignment of two representations with the same rows (Kornblith et al. 2019).

    .. math:: CKA(X, Y) = \\frac{\\|Y_c^T X_c\\|_F^2}{\\|X_c^T X_c\\|_F \\, \\|Y_c^T Y_c\\|_F}

    with column-centred ``X_c``, ``Y_c``. Invariant to orthogonal transforms and isotropic scaling;
    ``nan`` when either representation is constant. A complex representation (a Fourier layer's modes) is taken as
    its real and imaginary parts side by side (``torch.view_as_real``), as the layer map's Gram ``Re(X_c X_cᴴ)`` takes it.

    Args:
        x: a representation ``[N, P]`` (one row per sample).
        y: another ``[N, Q]`` of the same samples.

    Examples:
        >>> x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
        >>> round(linear_cka(x, 2 * x), 6), round(linear_cka(x, x @ torch.linalg.qr(torch.randn(3, 3))[0]), 4)
        (1.0, 1.0)
        >>> z = torch.randn(20, 3, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
        >>> round(linear_cka(z, torch.view_as_real(z).reshape(20, 6)), 6)  # the same numbers as real pairs
        1.0
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor):
            raise TypeError(f"Expected argument `{name}` to be a tensor [N, P] but got {type(t).__name__}")
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"Expected two matrices with the same rows but got {list(x.shape)} and {list(y.shape)}")
    # complex: real and imaginary parts side by side (.double() would drop the imaginary part); integer codes too
    # (mean() refuses them)
    x, y = (torch.view_as_real(t).flatten(1) if t.is_complex() else t if t.is_floating_point() else t.double() for t in (x, y))
    xc, yc = (x - x.mean(0)).double(), (y - y.mean(0)).double()
    denom = torch.linalg.matrix_norm(xc.T @ xc) * torch.linalg.matrix_norm(yc.T @ yc)
    if denom <= 0:
        return math.nan
    return float(torch.linalg.matrix_norm(yc.T @ xc) ** 2 / denom)


#: CKA within this of the threshold counts as reaching it: the CKA of two equal profiles is 1 only up to
#: rounding (``<K, K> / (sqrt<K, K> sqrt<K, K>)``, and float32 profiles of one layer from other batch
#: compositions), so ``threshold=1.0`` would otherwise never merge exact copies.
CKA_ROUNDING = 1e-6


#: Profile rows CKA needs to tell layers apart: the centred Gram matrix of 2 rows is ``[[a, -a], [-a, a]]``
#: for every layer, so the CKA of any two layers is 1 (and undefined for 1 row).
MIN_CKA_ROWS = 3


def gram_cka(grams: list[Tensor]) -> Tensor:
    """``[L, L]`` linear CKA from centred Gram matrices: ``<K_a, K_b>_F / (||K_a||_F ||K_b||_F)``."""
    flat = torch.stack([k.reshape(-1) for k in grams])
    inner = flat @ flat.T
    norms = inner.diagonal().sqrt()
    denom = norms.unsqueeze(0) * norms.unsqueeze(1)
    return torch.where(denom > 0, inner / denom.clamp_min(1e-300), torch.full_like(inner, math.nan))


def without_rounding_profiles(cka: Tensor, response: Tensor, dtypes: list[torch.dtype]) -> Tensor:
    """NaN rows and columns (the diagonal entry too, as for a profile of exact zeros) for layers that no intervention reaches: a
    layer whose relative response is within rounding (``4 eps`` of its dtype; a side branch fed by
    forward arguments only, ``meta -> Linear``) has a profile of rounding noise when the
    intervened rows run in other batch compositions than the clean pass (``max_batch_size``), and
    CKA would compare that noise with the other layers (0.1 instead of the NaN of an exact zero)."""
    dead = torch.tensor(unmoved_layers(response, dtypes), dtype=torch.bool, device=cka.device)
    if not bool(dead.any()):
        return cka
    cka = cka.clone()
    cka[dead, :] = math.nan
    cka[:, dead] = math.nan
    return cka


def unmoved_layers(response: Tensor, dtypes: list[torch.dtype]) -> list[bool]:
    """Per layer, whether no intervention moves it: its relative response is within rounding (``4 eps`` of its
    dtype; exactly 0 for a layer after units that no probe sample activates, or fed by no input).

    Examples:
        >>> unmoved_layers(torch.tensor([0.3, 0.0, 1e-9]), [torch.float32] * 3)
        [False, True, True]
    """
    return [float(r) <= 4 * torch.finfo(d).eps for r, d in zip(response.tolist(), dtypes)]


def merge_contiguous(cka: Tensor, threshold: float) -> list[list[int]]:
    """Contiguous groups, complete linkage: a layer joins the current group if its CKA with every member is >= threshold
    (up to :data:`CKA_ROUNDING`)."""
    groups = [[0]]
    for i in range(1, cka.shape[0]):
        if all(float(cka[i, j]) >= threshold - CKA_ROUNDING for j in groups[-1]):  # NaN never merges
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups
