"""Rank statistics of explanations ``[N, G]`` (one ranking of G groups or units per row), exact and
vectorised over rows: average ranks, Spearman's ρ, Kendall's τ_b, top-k overlap.

Every function takes an optional ``valid`` mask ``[N, G]`` (bool): row ``n`` is then ranked over
its valid groups ``V_n`` only (e.g. the real tokens of a padded sentence), as if the others were
not there: the statistics equal SciPy's on ``a[n, V_n]``, ``b[n, V_n]``. Without ``valid`` every
group counts.

These are the statistics that compare explanations (Captum agreement, causal drift, stability).
torchmetrics' ``spearman_corrcoef`` and ``kendall_rank_corrcoef`` compute the same quantities on
one pair of vectors at a time (with an ε in Spearman's denominator); here every row of a batch is
ranked at once and identical rankings give exactly 1 (docs/architecture.md).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_causal.causal.engine.batching import check_max_batch_size, map_rows
from lightning_causal.causal.engine.checks import check_int

__all__ = ["average_ranks", "spearman", "kendall", "topk_overlap", "rank_positions", "largest_k"]


def _check_scores(name: str, a: object, *, dim: bool = True) -> None:
    """``a`` must be a tensor ``[N, G]`` (a list or a NumPy array would fail inside torch)."""
    if not isinstance(a, Tensor):
        raise TypeError(f"Expected argument `{name}` to be a tensor [N, G] but got {type(a).__name__}")
    if dim and a.dim() != 2:
        hint = f"; for one ranking of G groups pass {name}[None]" if a.dim() == 1 else ""
        raise ValueError(f"Expected argument `{name}` to be a tensor [N, G] (one row per sample) but got {list(a.shape)}{hint}")


def _check_not_nan(name: str, a: Tensor, valid: Tensor | None) -> None:
    """Ranks of a NaN have no meaning (a sort places it above every number)."""
    nan = a.isnan() if valid is None else a.isnan() & valid
    if bool(nan.any()):
        rows = nan.any(1).nonzero().flatten().tolist()
        raise ValueError(f"Expected argument `{name}` to hold no NaN{' at its valid groups' if valid is not None else ''} but got NaN "
                         f"in rows {rows[:6]}{' ...' if len(rows) > 6 else ''}")


def _nan_rows(a: Tensor, b: Tensor, valid: Tensor | None) -> Tensor:
    """Rows where ``a`` or ``b`` holds a NaN at a valid group: their statistic is NaN."""
    nan = a.isnan() | b.isnan()
    return (nan if valid is None else nan & valid).any(1)


def _check_pair(a: Tensor, b: Tensor) -> None:
    _check_scores("a", a, dim=False)
    _check_scores("b", b, dim=False)
    if a.dim() != 2 or a.shape != b.shape:
        hint = "; for one ranking of G groups pass a[None] and b[None]" if a.dim() == 1 and b.dim() == 1 else ""
        raise ValueError(f"Expected `a` and `b` to be two explanations of one shape [N, G] (one row per sample) but got "
                         f"{list(a.shape)} and {list(b.shape)}{hint}")


def _check_valid(valid: Tensor | None, a: Tensor) -> Tensor | None:
    if valid is None:
        return None
    if not isinstance(valid, Tensor) or valid.dtype != torch.bool or valid.shape != a.shape:
        raise ValueError(f"Expected argument `valid` to be None or a boolean tensor of shape {list(a.shape)} but got {valid!r:.80}")
    return valid.to(a.device)


def _constant(a: Tensor, valid: Tensor | None = None) -> Tensor:
    """Rows whose (valid) entries are all equal, or that have fewer than two valid entries."""
    if valid is None:
        return (a == a[:, :1]).all(1)
    hi = a.masked_fill(~valid, _extreme(a, low=True)).amax(1)
    lo = a.masked_fill(~valid, _extreme(a, low=False)).amin(1)
    return (hi == lo) | (valid.sum(1) < 2)


def _extreme(a: Tensor, *, low: bool) -> float | int:
    """The lowest (``low``) or highest value of ``a``'s dtype: a filler that sorts last."""
    if a.is_floating_point():
        return float("-inf") if low else float("inf")
    info = torch.iinfo(a.dtype) if a.dtype != torch.bool else torch.iinfo(torch.uint8)
    return info.min if low else info.max


def average_ranks(a: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-row ranks ``1..G`` of ``a`` ``[N, G]``, ties sharing their average rank.

    .. math:: r_i = 1 + \\#\\{j ∈ V : a_j < a_i\\} + \\tfrac12 \\#\\{j ∈ V, j ≠ i : a_j = a_i\\}

    over the row's valid groups ``V`` (all groups without ``valid``): ranks ``1..|V_n|`` among
    them, NaN at the invalid groups (a NaN score at a valid group is refused: it has no rank). Vectorised: invalid entries are filled with the dtype's largest
    value, so they sort last, and the counts of entries ``≤ a_i`` are capped at ``|V_n|``.

    Args:
        a: scores ``[N, G]``.
        valid: ``None`` (every group counts) or booleans ``[N, G]``: the groups of each row that count
            (e.g. real tokens).

    Examples:
        >>> average_ranks(torch.tensor([[10.0, 30.0, 20.0, 20.0]]))
        tensor([[1.0000, 4.0000, 2.5000, 2.5000]])
        >>> average_ranks(torch.tensor([[10.0, 30.0, 20.0, 0.0]]), torch.tensor([[True, True, True, False]]))
        tensor([[1., 3., 2., nan]])
    """
    _check_scores("a", a)
    valid = _check_valid(valid, a)
    _check_not_nan("a", a, valid)
    dtype = a.dtype if a.is_floating_point() else torch.float
    if valid is None:
        srt = a.sort(dim=1).values.contiguous()
        less = torch.searchsorted(srt, a.contiguous(), right=False)
        leq = torch.searchsorted(srt, a.contiguous(), right=True)
        return (less + leq + 1).to(dtype) / 2
    filled = a.masked_fill(~valid, _extreme(a, low=False)).contiguous()
    srt = filled.sort(dim=1).values.contiguous()
    less = torch.searchsorted(srt, filled, right=False)
    leq = torch.searchsorted(srt, filled, right=True).minimum(valid.sum(1, keepdim=True))
    return ((less + leq + 1).to(dtype) / 2).masked_fill(~valid, float("nan"))


def spearman(a: Tensor, b: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-sample Spearman rank correlation between the rows of ``a`` and ``b`` ``[N, G]``.

    .. math:: ρ = \\frac{\\sum_{i ∈ V} (r_i(a) - \\bar r(a)) (r_i(b) - \\bar r(b))}
              {\\sqrt{\\sum_{i ∈ V} (r_i(a) - \\bar r(a))^2 \\sum_{i ∈ V} (r_i(b) - \\bar r(b))^2}}

    with average ranks for ties (as torchmetrics' ``spearman_corrcoef`` and SciPy, but exact:
    no ε in the denominator, so identical rankings give exactly 1), over the row's ``valid``
    groups ``V`` (all groups by default; see :func:`average_ranks`). NaN where a row is constant
    on ``V``, has fewer than two valid groups, or holds a NaN at a valid group in ``a`` or ``b``.

    Args:
        a: scores ``[N, G]``.
        b: scores ``[N, G]`` of the same groups.
        valid: ``None`` (every group counts) or booleans ``[N, G]``: the groups of each row that count
            (e.g. real tokens).

    Examples:
        >>> a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 5.0, 1.0]])
        >>> spearman(a, a), spearman(a, -a)
        (tensor([1., 1.]), tensor([-1., -1.]))
        >>> spearman(a, torch.tensor([[1.0, 2.0, 0.0], [0.0, 5.0, 9.0]]), torch.tensor([[True, True, False]] * 2))
        tensor([1., 1.])
    """
    _check_pair(a, b)
    valid = _check_valid(valid, a)
    nan = _nan_rows(a, b, valid)
    if bool(nan.any()):
        a, b = a.nan_to_num(0.0), b.nan_to_num(0.0)
    dtype = a.dtype if a.is_floating_point() else torch.float
    if valid is None:
        ra, rb = average_ranks(a.double()), average_ranks(b.double())
        ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
        rho = (ra * rb).sum(1) / torch.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
        return rho.clamp(-1.0, 1.0).to(dtype).masked_fill(_constant(a) | _constant(b) | nan, float("nan"))
    count = valid.sum(1, keepdim=True).clamp_min(1)
    ra, rb = average_ranks(a.double(), valid).nan_to_num(0.0), average_ranks(b.double(), valid).nan_to_num(0.0)
    ra = (ra - ra.sum(1, keepdim=True) / count) * valid  # centred over V, 0 elsewhere
    rb = (rb - rb.sum(1, keepdim=True) / count) * valid
    rho = (ra * rb).sum(1) / torch.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    return rho.clamp(-1.0, 1.0).to(dtype).masked_fill(_constant(a, valid) | _constant(b, valid) | nan, float("nan"))


def kendall(a: Tensor, b: Tensor, max_batch_size: int | None = None, valid: Tensor | None = None) -> Tensor:
    """Per-sample Kendall τ_b between the rows of ``a`` and ``b`` ``[N, G]``.

    .. math:: τ_b = \\frac{\\sum_{i<j} \\mathrm{sgn}(a_i - a_j)\\,\\mathrm{sgn}(b_i - b_j)}
              {\\sqrt{\\sum_{i<j} |\\mathrm{sgn}(a_i - a_j)| \\sum_{i<j} |\\mathrm{sgn}(b_i - b_j)|}}

    (concordant minus discordant pairs over the tie-corrected pair counts; equals torchmetrics'
    ``kendall_rank_corrcoef`` variant "b"), the sums over the pairs of the row's ``valid``
    groups (all pairs by default). For few groups the ``[N, G, G]`` sign matrices are
    formed in chunks of ``max_batch_size`` rows; for many groups (G > 128) the upper triangle of
    pairs is walked in blocks of groups with the samples contiguous (faster there; see
    ``benchmarks/bench_ranking.py``). NaN where a row is constant on its valid groups, has fewer
    than two, or holds a NaN at a valid group in ``a`` or ``b``.

    Args:
        a: scores ``[N, G]``.
        b: scores ``[N, G]`` of the same groups.
        max_batch_size: rows per chunk of sign matrices (an integer >= 1); ``None``: chosen from a
            memory budget.
        valid: ``None`` (every group counts) or booleans ``[N, G]``: the groups of each row that count
            (e.g. real tokens).

    Examples:
        >>> kendall(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 3.0, 2.0]]))
        tensor([0.3333])
        >>> kendall(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 3.0, 2.0]]), valid=torch.tensor([[True, False, True]]))
        tensor([1.])
    """
    _check_pair(a, b)
    check_max_batch_size(max_batch_size)
    valid = _check_valid(valid, a)
    nan = _nan_rows(a, b, valid)
    if a.shape[1] > 128:
        return _kendall_many_groups(a, b, valid=valid).masked_fill(nan, float("nan"))
    g = a.shape[1]
    rows = max_batch_size or max(1, (1 << 24) // max(1, g * g))

    def tau(idx: Tensor) -> Tensor:
        sa = torch.sign(a[idx].unsqueeze(2) - a[idx].unsqueeze(1))
        sb = torch.sign(b[idx].unsqueeze(2) - b[idx].unsqueeze(1))
        if valid is not None:
            pairs = valid[idx].unsqueeze(2) & valid[idx].unsqueeze(1)  # both groups of the pair valid
            sa, sb = sa * pairs, sb * pairs
        num = (sa * sb).sum((1, 2))
        den = torch.sqrt(sa.abs().sum((1, 2)) * sb.abs().sum((1, 2)))
        return num / den  # every pair counted twice in numerator and denominator

    return map_rows(a.shape[0], rows, tau, a.device).masked_fill(nan, float("nan"))


def _kendall_many_groups(a: Tensor, b: Tensor, elements: int = 1 << 22, valid: Tensor | None = None) -> Tensor:
    """τ_b over the pairs ``i < j`` only, blocks of ``i`` against every later ``j``, samples last."""
    n, g = a.shape
    at, bt = a.T.contiguous(), b.T.contiguous()  # [G, N]
    vt = valid.T.contiguous() if valid is not None else None
    num = torch.zeros(n, dtype=torch.float64, device=a.device)
    na, nb = torch.zeros_like(num), torch.zeros_like(num)
    block = max(1, elements // max(1, n * g))
    j_all = torch.arange(g, device=a.device)
    for i0 in range(0, g - 1, block):  # a loop over blocks of groups, not over samples
        i1 = min(g - 1, i0 + block)
        upper = (j_all[i0 + 1 :].view(1, -1) > j_all[i0:i1].view(-1, 1)).unsqueeze(-1)
        sa = torch.sign(at[i0:i1, None, :] - at[None, i0 + 1 :, :]) * upper  # [B, G - i0 - 1, N]
        sb = torch.sign(bt[i0:i1, None, :] - bt[None, i0 + 1 :, :]) * upper
        if vt is not None:
            pairs = vt[i0:i1, None, :] & vt[None, i0 + 1 :, :]
            sa, sb = sa * pairs, sb * pairs
        num += (sa * sb).sum((0, 1), dtype=torch.float64)
        na += sa.abs().sum((0, 1), dtype=torch.float64)
        nb += sb.abs().sum((0, 1), dtype=torch.float64)
    return (num / torch.sqrt(na * nb)).to(a.dtype if a.is_floating_point() else torch.float)


def topk_overlap(a: Tensor, b: Tensor, k: int, valid: Tensor | None = None, *, proper: bool = False,
                 ties: str = "cut") -> Tensor:
    """Per-sample share of the ``k`` largest groups of ``a`` that are among the ``k`` largest of ``b``.

    .. math:: O = |\\mathrm{top}_{k_n}(a) ∩ \\mathrm{top}_{k_n}(b)| / k_n, \\quad k_n = \\min(k, |V_n|)

    The top groups are taken among the row's valid groups ``V_n`` (all groups without ``valid``), and ``k`` is capped
    at their number.
    ``proper=True`` caps it at ``max(1, |V_n| - 1)`` instead: a top-k holding every valid group is
    shared by any two rankings (overlap 1.0 by construction, e.g. a padded sentence of three real
    tokens compared at ``k = 5``). NaN, as :func:`spearman`, for a row where ``a`` or ``b`` is constant
    on ``V_n`` (an explanation of 0 everywhere has no top k: any k of its groups would do) or that has
    fewer than two valid groups, and for a row holding a NaN at a valid group in ``a`` or ``b``
    (``topk`` would take it for the largest score).

    ``ties="cut"`` (the default) takes no group from scores tied across the k-th place: ``k_n`` is cut to the largest
    ``k' <= k_n`` at which neither ``a`` nor ``b`` holds a tie across place ``k'`` (NaN where none is left). A
    max-pooled set model gives most of its points exactly 0 (60 of 64 per sample), so the top 5 of a sample with 3
    points of effect held 2 of the zeros, the lowest ids in both explanations: a method scoring 4 random points agreed
    0.29, chance 0.08. ``CaptumBaseline``'s agreement cuts, so a caller of this function gets the report's numbers;
    ``ties="first"`` breaks ties by lower group id (:func:`rank_positions`) and is NaN only where the rules above
    say. A row's NaN is neither agreement nor disagreement:
    a mean over the rows leaves it out (``torch.nanmean``), as ``CaptumBaseline``'s agreement does.

    Args:
        a: scores ``[N, G]``.
        b: scores ``[N, G]`` of the same groups.
        k: the number of top groups compared (an integer >= 1).
        valid: ``None`` (every group counts) or booleans ``[N, G]``: the groups of each row that count
            (e.g. real tokens).
        proper: cap ``k`` below the number of valid groups, as above.
        ties: ``"cut"`` (no tied group across the k-th place) or ``"first"`` (ties by lower group id), as above.

    Examples:
        >>> topk_overlap(torch.tensor([[4.0, 3.0, 2.0, 1.0]]), torch.tensor([[4.0, 1.0, 3.0, 2.0]]), 2)
        tensor([0.5000])
        >>> topk_overlap(torch.tensor([[4.0, 3.0, 2.0, 1.0]]), torch.tensor([[4.0, 1.0, 3.0, 2.0]]), 3,
        ...              torch.tensor([[True, False, True, False]]))
        tensor([1.])
        >>> topk_overlap(torch.tensor([[3.0, 2.0, 1.0, 0.0]]), torch.tensor([[1.0, 2.0, 3.0, 0.0]]), 4,
        ...              torch.tensor([[True, True, True, False]]), proper=True)
        tensor([0.5000])
        >>> topk_overlap(torch.tensor([[3.0, 3.0, 1.0], [1.0, 2.0, 3.0]]), torch.tensor([[0.0, 3.0, 1.0], [2.0, 2.0, 2.0]]), 1, ties="first")
        tensor([0., nan])
        >>> zeros = torch.tensor([[0.0, 0.0, 0.0, 5.0, 0.0, 0.0]])  # one point of effect, the rest exactly 0
        >>> other = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 7.0]])
        >>> topk_overlap(zeros, other, 3), topk_overlap(zeros, zeros, 3), topk_overlap(zeros, other, 3, ties="first")
        (tensor([0.]), tensor([1.]), tensor([0.6667]))
    """
    _check_pair(a, b)
    check_int("k", k, minimum=1, maximum=a.shape[1])
    if ties not in ("first", "cut"):
        raise ValueError(f"Expected argument `ties` to be 'first' or 'cut' but got {ties!r:.80}")
    valid = _check_valid(valid, a)
    nan = _nan_rows(a, b, valid)
    if bool(nan.any()):
        a, b = a.nan_to_num(0.0), b.nan_to_num(0.0)
    undefined = nan | _constant(a, valid) | _constant(b, valid)
    size = valid.sum(1, keepdim=True) if valid is not None else torch.full_like(a[:, :1], a.shape[1], dtype=torch.long)
    kn = ((size - 1).clamp(min=1) if proper else size).clamp_max(k)
    if ties == "cut":
        kn = _untied_k(a, valid, kn) & _untied_k(b, valid, kn)
        kn = (kn * torch.arange(kn.shape[1], device=kn.device)).amax(1, keepdim=True)
        undefined = undefined | (kn.squeeze(1) == 0)
        kn = kn.clamp(min=1)
    ta, tb = _in_top(a, valid, kn), _in_top(b, valid, kn)
    dtype = a.dtype if a.is_floating_point() else torch.float
    return ((ta & tb).sum(1).to(dtype) / kn.squeeze(1)).masked_fill(undefined, float("nan"))


def _untied_k(scores: Tensor, valid: Tensor | None, kn: Tensor) -> Tensor:
    """``[N, G + 1]`` booleans: at which counts ``k' <= kn`` a row's top ``k'`` holds no group tied with one left out
    (``k' = 0`` always; the count of valid groups too)."""
    s = scores if valid is None else scores.masked_fill(~valid, _extreme(scores, low=True))
    ranked = s.sort(1, descending=True).values
    size = valid.sum(1, keepdim=True) if valid is not None else torch.full_like(kn, s.shape[1])
    ok = torch.ones(s.shape[0], s.shape[1] + 1, dtype=torch.bool, device=s.device)
    ok[:, 1:-1] = ranked[:, :-1] > ranked[:, 1:]
    counts = torch.arange(s.shape[1] + 1, device=s.device)
    return (ok | (counts == size)) & (counts <= kn)


def _in_top(scores: Tensor, valid: Tensor | None, kn: Tensor) -> Tensor:
    """``rank_positions(scores, valid) < kn`` (``kn`` ``[N, 1]``, at most the row's number of valid groups)
    without sorting whole rows: the groups above the row's ``kn``-th largest valid score, then the groups tied
    at it by lower group id until ``kn`` are taken (a full stable sort of 256 x 50,000 scores took 5x as long:
    ``benchmarks/bench_topk_overlap.py``)."""
    s = scores if valid is None else scores.masked_fill(~valid, _extreme(scores, low=True))
    kth = s.topk(max(1, int(kn.max())), dim=1).values.gather(1, (kn - 1).clamp(min=0))  # a row of kn = 0 takes nothing
    above, tied = s > kth, s == kth
    if valid is not None:
        above, tied = above & valid, tied & valid
    need = kn - above.sum(1, keepdim=True)
    if bool((tied.sum(1, keepdim=True) <= need).all()):  # no tie reaches past the k-th place (scores of real numbers)
        return above | tied
    return above | (tied & (tied.cumsum(1) <= need))


def rank_positions(scores: Tensor, valid: Tensor | None = None) -> Tensor:
    """Position ``0..G-1`` of each group when sorted by decreasing score (ties: lower group id
    first); with ``valid`` ``[N, G]`` the row's invalid groups come after all its valid ones. A NaN
    score at a valid group is refused (a sort would place it first).

    Args:
        scores: ``[N, G]``.
        valid: ``None`` (every group counts) or booleans ``[N, G]``: the groups of each row that count
            (e.g. real tokens).

    Examples:
        >>> rank_positions(torch.tensor([[1.0, 3.0, 2.0]]))
        tensor([[2, 0, 1]])
        >>> rank_positions(torch.tensor([[1.0, 3.0, 2.0]]), torch.tensor([[True, False, True]]))
        tensor([[1, 2, 0]])
    """
    _check_scores("scores", scores)
    valid = _check_valid(valid, scores)
    _check_not_nan("scores", scores, valid)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    if valid is not None:  # a stable sort on "invalid" keeps the score order within each part
        order = order.gather(1, torch.sort((~valid).gather(1, order).to(torch.uint8), dim=1, stable=True).indices)
    pos = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, pos)


def largest_k(scores: Tensor, k: int | None = None) -> tuple[Tensor, Tensor]:
    """The ``k`` largest entries of a vector ``[G]`` and their indices, largest first, equal scores by
    lower index first (all ``G`` when ``k`` is ``None``).

    ``torch.topk`` and a plain ``argsort`` order equal scores their own way, which changes with the
    vector's length and the device (``torch.zeros(4).topk(2)`` gives indices 2, 3): a table of the top
    groups or units listed one of two tied columns, the figure beside it the other. A NaN sorts last (with
    ``-inf``; ``torch.topk`` puts it first: the groups a float16 model ignores, NaN where its logits overflow,
    headed the top table).

    Args:
        scores: a vector ``[G]``.
        k: how many (``0 <= k``, at most ``G``); ``None``: all of them, in order.

    Examples:
        >>> largest_k(torch.tensor([0.5, 0.9, 0.5, 0.5]), 2)
        (tensor([0.9000, 0.5000]), tensor([1, 0]))
        >>> largest_k(torch.zeros(4))[1]
        tensor([0, 1, 2, 3])
        >>> largest_k(torch.tensor([float("nan"), 1.0, float("inf")]))[1]
        tensor([2, 1, 0])
        >>> largest_k(torch.tensor([65504.0, float("inf")], dtype=torch.float16))[1]  # inf before float16's largest finite value
        tensor([1, 0])
    """
    if not isinstance(scores, Tensor) or scores.dim() != 1:
        raise ValueError(f"Expected argument `scores` to be a vector [G] but got {getattr(scores, 'shape', type(scores).__name__)}")
    if k is not None:
        check_int("k", k, minimum=0, maximum=scores.shape[0])
    # nan_to_num's default puts the dtype's largest finite value for inf: float16's 65504 tied with inf, listed first by its lower index
    indices = torch.sort(scores.nan_to_num(nan=-math.inf, posinf=math.inf, neginf=-math.inf), descending=True, stable=True).indices
    indices = indices if k is None else indices[:k]
    return scores[indices], indices
