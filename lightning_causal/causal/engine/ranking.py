"""Rank statistics of explanations ``[N, G]`` (one ranking of G groups or units per row), exact and
vectorised over rows: average ranks, Spearman's ρ, Kendall's τ_b, top-k overlap.

These are the statistics that compare explanations (Captum agreement, causal drift, stability).
torchmetrics' ``spearman_corrcoef`` and ``kendall_rank_corrcoef`` compute the same quantities on
one pair of vectors at a time (with an ε in Spearman's denominator); here every row of a batch is
ranked at once and identical rankings give exactly 1 (docs/architecture.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_causal.causal.engine.batching import map_rows
from lightning_causal.causal.engine.checks import check_int

__all__ = ["average_ranks", "spearman", "kendall", "topk_overlap", "rank_positions"]


def _check_pair(a: Tensor, b: Tensor) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"Expected two explanations of the same shape [N, G] but got {list(a.shape)} and {list(b.shape)}")


def _constant(a: Tensor) -> Tensor:
    return (a == a[:, :1]).all(1)


def average_ranks(a: Tensor) -> Tensor:
    """Per-row ranks ``1..G`` of ``a`` ``[N, G]``, ties sharing their average rank.

    Examples:
        >>> average_ranks(torch.tensor([[10.0, 30.0, 20.0, 20.0]]))
        tensor([[1.0000, 4.0000, 2.5000, 2.5000]])
    """
    srt = a.sort(dim=1).values.contiguous()
    less = torch.searchsorted(srt, a.contiguous(), right=False)
    leq = torch.searchsorted(srt, a.contiguous(), right=True)
    return (less + leq + 1).to(a.dtype if a.is_floating_point() else torch.float) / 2


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample Spearman rank correlation between the rows of ``a`` and ``b`` ``[N, G]``.

    .. math:: ρ = \\frac{\\mathrm{cov}(r(a), r(b))}{σ_{r(a)} σ_{r(b)}}

    with average ranks for ties (as torchmetrics' ``spearman_corrcoef`` and SciPy, but exact:
    no ε in the denominator, so identical rankings give exactly 1). NaN where a row is constant.

    Examples:
        >>> a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 5.0, 1.0]])
        >>> spearman(a, a), spearman(a, -a)
        (tensor([1., 1.]), tensor([-1., -1.]))
    """
    _check_pair(a, b)
    ra, rb = average_ranks(a.double()), average_ranks(b.double())
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    rho = (ra * rb).sum(1) / torch.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    out = rho.clamp(-1.0, 1.0).to(a.dtype if a.is_floating_point() else torch.float)
    return out.masked_fill(_constant(a) | _constant(b), float("nan"))


def kendall(a: Tensor, b: Tensor, max_batch_size: int | None = None) -> Tensor:
    """Per-sample Kendall τ_b between the rows of ``a`` and ``b`` ``[N, G]``.

    .. math:: τ_b = \\frac{\\sum_{i<j} \\mathrm{sgn}(a_i - a_j)\\,\\mathrm{sgn}(b_i - b_j)}
              {\\sqrt{\\sum_{i<j} |\\mathrm{sgn}(a_i - a_j)| \\sum_{i<j} |\\mathrm{sgn}(b_i - b_j)|}}

    (concordant minus discordant pairs over the tie-corrected pair counts; equals torchmetrics'
    ``kendall_rank_corrcoef`` variant "b"). For few groups the ``[N, G, G]`` sign matrices are
    formed in chunks of ``max_batch_size`` rows; for many groups (G > 128) the upper triangle of
    pairs is walked in blocks of groups with the samples contiguous (faster there; see
    ``benchmarks/bench_ranking.py``). NaN where a row is constant.

    Examples:
        >>> kendall(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 3.0, 2.0]]))
        tensor([0.3333])
    """
    _check_pair(a, b)
    if a.shape[1] > 128:
        return _kendall_many_groups(a, b)
    g = a.shape[1]
    rows = max_batch_size or max(1, (1 << 24) // max(1, g * g))

    def tau(idx: Tensor) -> Tensor:
        sa = torch.sign(a[idx].unsqueeze(2) - a[idx].unsqueeze(1))
        sb = torch.sign(b[idx].unsqueeze(2) - b[idx].unsqueeze(1))
        num = (sa * sb).sum((1, 2))
        den = torch.sqrt(sa.abs().sum((1, 2)) * sb.abs().sum((1, 2)))
        return num / den  # every pair counted twice in numerator and denominator

    return map_rows(a.shape[0], rows, tau, a.device)


def _kendall_many_groups(a: Tensor, b: Tensor, elements: int = 1 << 22) -> Tensor:
    """τ_b over the pairs ``i < j`` only, blocks of ``i`` against every later ``j``, samples last."""
    n, g = a.shape
    at, bt = a.T.contiguous(), b.T.contiguous()  # [G, N]
    num = torch.zeros(n, dtype=torch.float64, device=a.device)
    na, nb = torch.zeros_like(num), torch.zeros_like(num)
    block = max(1, elements // max(1, n * g))
    j_all = torch.arange(g, device=a.device)
    for i0 in range(0, g - 1, block):  # a loop over blocks of groups, not over samples
        i1 = min(g - 1, i0 + block)
        upper = (j_all[i0 + 1 :].view(1, -1) > j_all[i0:i1].view(-1, 1)).unsqueeze(-1)
        sa = torch.sign(at[i0:i1, None, :] - at[None, i0 + 1 :, :]) * upper  # [B, G - i0 - 1, N]
        sb = torch.sign(bt[i0:i1, None, :] - bt[None, i0 + 1 :, :]) * upper
        num += (sa * sb).sum((0, 1), dtype=torch.float64)
        na += sa.abs().sum((0, 1), dtype=torch.float64)
        nb += sb.abs().sum((0, 1), dtype=torch.float64)
    return (num / torch.sqrt(na * nb)).to(a.dtype if a.is_floating_point() else torch.float)


def topk_overlap(a: Tensor, b: Tensor, k: int) -> Tensor:
    """Per-sample share of the ``k`` largest groups of ``a`` that are among the ``k`` largest of ``b``.

    Examples:
        >>> topk_overlap(torch.tensor([[4.0, 3.0, 2.0, 1.0]]), torch.tensor([[4.0, 1.0, 3.0, 2.0]]), 2)
        tensor([0.5000])
    """
    _check_pair(a, b)
    check_int("k", k, minimum=1, maximum=a.shape[1])
    ta = torch.zeros_like(a, dtype=torch.bool).scatter_(1, a.topk(k, dim=1).indices, True)
    tb = torch.zeros_like(b, dtype=torch.bool).scatter_(1, b.topk(k, dim=1).indices, True)
    return (ta & tb).sum(1).to(a.dtype) / k


def rank_positions(scores: Tensor) -> Tensor:
    """Position of each group when sorted by decreasing score (ties: lower group id first)."""
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    pos = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, pos)
