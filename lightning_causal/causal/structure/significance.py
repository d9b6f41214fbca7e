"""The tests that select a causal graph's nodes and edges: paired t-tests over the probe (the
statistic ``z = mean / (sd / √n)`` referred to Student's t with ``n - 1`` degrees of freedom), one- or
two-sided p-values, multiple-testing corrections (Holm 1979; Benjamini & Hochberg 1995) and the
share of the strongest effect in a group.

Examples:
    >>> d = torch.tensor([[2.0, 4.0, 6.0, 8.0]])
    >>> mean, se, z = paired_z(d)
    >>> round(float(z), 4), round(float(p_values(z, "greater", df=3)), 6), round(float(p_values(z, "greater")), 8)
    (3.873, 0.015233, 5.376e-05)
    >>> adjust_p_values(torch.tensor([0.01, 0.04, 0.03]), "holm")
    tensor([0.0300, 0.0600, 0.0600])
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from lightning_causal.causal.engine.checks import check_choice

__all__ = ["ALTERNATIVES", "CORRECTIONS", "Alternative", "Correction", "paired_z", "p_values", "z_critical", "adjust_p_values", "shares"]

#: ``"greater"``: the effect is positive (removing the unit or path lowers the explained output);
#: ``"two-sided"``: positive or negative.
Alternative = Literal["greater", "two-sided"]
ALTERNATIVES: tuple[Alternative, ...] = get_args(Alternative)
#: ``"bh"`` (Benjamini-Hochberg false discovery rate), ``"holm"`` (Holm family-wise error), ``"none"``.
Correction = Literal["bh", "holm", "none"]
CORRECTIONS: tuple[Correction, ...] = get_args(Correction)


def paired_z(d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean, standard error and z-score of paired differences ``d [..., n]`` over the last dimension.

    .. math:: \\bar d = \\frac1n \\sum_x d(x), \\qquad SE = \\frac{s_d}{\\sqrt n}, \\qquad z = \\bar d / SE

    with the sample standard deviation ``s_d`` (``n - 1`` in the denominator). ``z`` is ``±inf``
    when ``SE = 0`` and the mean is not 0, and 0 when the mean is 0 or ``n < 2`` (``SE`` is then NaN).

    Args:
        d: paired differences ``[..., n]``.
    """
    n = d.shape[-1]
    mean = d.mean(-1) if n else torch.zeros(d.shape[:-1], dtype=d.dtype, device=d.device)
    if n < 2:
        return mean, torch.full_like(mean, math.nan), torch.zeros_like(mean)
    se = d.std(-1) / math.sqrt(n)
    z = torch.where(se > 0, mean / se.clamp_min(torch.finfo(se.dtype).tiny), torch.sign(mean) * math.inf)
    return mean, se, torch.nan_to_num(z, nan=0.0, posinf=math.inf, neginf=-math.inf)


def p_values(z: Tensor, alternative: Alternative = "greater", df: Tensor | float | None = None) -> Tensor:
    """p-values of the statistics ``z``: ``P(T >= z)`` (``"greater"``) or ``P(|T| >= |z|)`` (``"two-sided"``),
    ``T`` Student's t with ``df`` degrees of freedom, or standard normal when ``df`` is ``None``.

    The statistic of :func:`paired_z` over ``n`` samples is t-distributed with ``n - 1`` degrees of
    freedom for normal differences; referring it to the normal (``df=None``) is the large-sample
    approximation, anti-conservative for few samples: at ``alpha = 0.05`` the one-sided test rejects
    a true null 8.8% of the time with ``n = 5`` and 7.2% with ``n = 8`` (two-sided: 12.2%, 9.1%).
    Entries with ``df < 1`` (fewer than two samples; :func:`paired_z` gives them ``z = 0``) get
    the normal p-value, and so do entries with ``df = inf`` (the t's limit). From ``df >= 1e5``
    (:data:`LARGE_DF`) the t's tail is Wallace's normal transform (relative error at most 4.3e-6), as the
    exact continued fraction needs about ``sqrt(df)`` steps there.

    Args:
        z: the statistics (any shape).
        alternative: ``"greater"`` (one-sided, effects above 0) or ``"two-sided"``.
        df: degrees of freedom, broadcast with ``z`` (``n - 1`` for :func:`paired_z` over ``n``
            samples), or ``None`` for the normal distribution.
    """
    check_choice("alternative", alternative, ALTERNATIVES)
    z = z.double()
    if df is None:
        if alternative == "greater":
            return 0.5 * torch.special.erfc(z / math.sqrt(2.0))
        return torch.special.erfc(z.abs() / math.sqrt(2.0))
    nu = torch.as_tensor(df, dtype=torch.float64, device=z.device)
    if torch.isnan(nu).any():
        raise ValueError(f"Expected argument `df` to hold degrees of freedom (numbers) but got {df!r}")
    z, nu = torch.broadcast_tensors(z, nu)
    normal = p_values(z, alternative)
    large = nu >= LARGE_DF  # the continued fraction takes ~sqrt(nu) steps there: seconds at nu = 1e5
    tail = torch.where(large, _wallace_upper_tail(z.abs(), nu.clamp_min(1.0)),
                       _t_upper_tail(z.abs(), torch.where(large, 1.0, nu.clamp_min(1.0))))  # P(T >= |z|)
    if alternative == "greater":
        tail = torch.where(z >= 0, tail, 1.0 - tail)
    else:
        tail = (2.0 * tail).clamp(max=1.0)
    # a NaN statistic: NaN, as the normal's; infinite df: the normal itself (the continued fraction gives NaN there)
    return torch.where((nu >= 1.0) & torch.isfinite(nu) & ~torch.isnan(z), tail, normal)


LARGE_DF = 1e5
"""Degrees of freedom from which :func:`p_values` takes Wallace's normal transform of Student's t instead of
the continued fraction (relative error of the p-value at most 4.3e-6 there for ``|t| <= 40``, against SciPy)."""


def _wallace_upper_tail(t: Tensor, nu: Tensor) -> Tensor:
    """``P(T >= t)`` for ``t >= 0`` and Student's t with many degrees of freedom ``nu``: ``1 - Φ(w)`` with
    ``w = (8 nu + 1) / (8 nu + 3) · sqrt(nu · log(1 + t² / nu))`` (Wallace, 1959, "Bounds on normal
    approximations to Student's and the chi-square distributions", Ann. Math. Statist. 30(4)), whose relative
    error falls as ``1 / nu²`` in the body: 4.2e-6 at ``nu = 1e5``, 4.2e-8 at ``1e6`` (measured up to ``t = 40``)."""
    w = (8.0 * nu + 1.0) / (8.0 * nu + 3.0) * torch.sqrt(nu * torch.log1p(t.square() / nu))
    return 0.5 * torch.special.erfc(w / math.sqrt(2.0))


def _t_upper_tail(t: Tensor, nu: Tensor) -> Tensor:
    """``P(T >= t)`` for ``t >= 0`` and Student's t with ``nu >= 1`` degrees of freedom:
    ``I_x(nu/2, 1/2) / 2`` with ``x = nu / (nu + t²)``, the regularised incomplete beta function by
    its continued fraction (Numerical Recipes' ``betacf``, modified Lentz), evaluated where it
    converges fast (``x < (a + 1) / (a + b + 2)``) and by the symmetry ``I_x(a, b) = 1 - I_{1-x}(b, a)``
    elsewhere; ``1 - x = t² / (nu + t²)`` is formed directly, so far tails keep their digits."""
    t2 = t.square()
    x = torch.where(torch.isinf(t2), torch.zeros_like(t2), nu / (nu + t2))
    y = torch.where(torch.isinf(t2), torch.ones_like(t2), t2 / (nu + t2))  # 1 - x
    a, b = nu / 2.0, torch.full_like(nu, 0.5)
    direct = x < (a + 1.0) / (a + b + 2.0)
    # I_x(a, b) where direct, I_y(b, a) elsewhere (then 1 - that)
    pa, pb, px, py = torch.where(direct, a, b), torch.where(direct, b, a), torch.where(direct, x, y), torch.where(direct, y, x)
    log_front = (torch.lgamma(pa + pb) - torch.lgamma(pa) - torch.lgamma(pb)
                 + pa * torch.log(px.clamp_min(1e-300)) + pb * torch.log(py.clamp_min(1e-300)))
    ibeta = torch.exp(log_front) * _beta_fraction(pa, pb, px) / pa
    ibeta = torch.where(px > 0, ibeta, torch.zeros_like(ibeta))
    ix = torch.where(direct, ibeta, 1.0 - ibeta)
    return (0.5 * ix).clamp(0.0, 0.5)


def _beta_fraction(a: Tensor, b: Tensor, x: Tensor, eps: float = 1e-14, max_iter: int = 5_000) -> Tensor:
    """The continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes' ``betacf``),
    element-wise, in float64 NumPy: the same operations in the same order as on tensors (the same bits), at about a
    quarter of the cost (a step is some twenty operations on a few dozen numbers, where a tensor operation's overhead is
    several times NumPy's), the coefficients of :data:`_BLOCK` steps at a time."""
    device = x.device
    a, b, x = (v.detach().to("cpu", torch.float64).numpy() for v in torch.broadcast_tensors(a, b, x))
    tiny = 1e-300

    def guard(v: np.ndarray) -> np.ndarray:
        return np.where(np.abs(v) < tiny, tiny, v)

    qab, qap, qam = a + b, a + 1.0, a - 1.0
    with np.errstate(all="ignore"):  # a NaN input stays NaN (no warning): p_values answers it
        c = np.ones_like(x)
        d = 1.0 / guard(1.0 - qab * x / qap)
        h = d.copy()
        for start in range(1, max_iter + 1, _BLOCK):
            m = np.arange(start, min(start + _BLOCK, max_iter + 1), dtype=np.float64).reshape(-1, *([1] * x.ndim))
            m2 = 2.0 * m
            odd = m * (b - m) * x / ((qam + m2) * (a + m2))
            even = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            for aa, bb in zip(odd, even):
                d = 1.0 / guard(1.0 + aa * d)
                c = guard(1.0 + aa / c)
                h = h * d * c
                d = 1.0 / guard(1.0 + bb * d)
                c = guard(1.0 + bb / c)
                delta = d * c
                h = h * delta
                if bool(((np.abs(delta - 1.0) <= eps) | ~np.isfinite(delta)).all()):  # NaN input: no iterations to wait for
                    return torch.from_numpy(np.asarray(h)).to(device)
    return torch.from_numpy(np.asarray(h)).to(device)


_BLOCK = 16  # steps of the continued fraction whose coefficients are computed at once (most statistics converge in 18-31)


def z_critical(alpha: float, alternative: Alternative = "greater") -> float:
    """The z a single test must reach against the normal reference: ``Φ⁻¹(1 - α)`` (1.645 at 0.05) or
    ``Φ⁻¹(1 - α/2)`` two-sided; the large-sample limit of the paired t-test's threshold over ``n`` samples
    (Student's t with ``n - 1`` degrees of freedom, :func:`p_values` with ``df``: 2.132 at 0.05 for ``n = 5``).

    Args:
        alpha: the significance level of the single test.
        alternative: ``"greater"`` (one-sided, effects above 0) or ``"two-sided"``.
    """
    check_choice("alternative", alternative, ALTERNATIVES)
    level = alpha if alternative == "greater" else alpha / 2.0
    if level >= 1.0:
        return -math.inf
    return float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(1.0 - level, dtype=torch.float64)))


def adjust_p_values(p: Tensor, method: Correction = "bh") -> Tensor:
    """p-values adjusted for ``m = p.numel()`` tests, so that ``adjusted <= alpha`` is the decision.

    Holm (step-down, controls the family-wise error rate):
    ``p̃_(k) = max_{i <= k} min(1, (m - i + 1) p_(i))``.
    Benjamini-Hochberg (step-up, controls the false discovery rate for independent or positively
    dependent tests): ``p̃_(k) = min_{i >= k} min(1, m p_(i) / i)``. ``p_(i)`` are the sorted
    p-values; the adjusted values come back in the input order. ``"none"`` returns ``p``.

    Args:
        p: the p-values (any shape; all of them are the family of tests).
        method: ``"bh"`` (Benjamini-Hochberg), ``"holm"`` or ``"none"``.

    Examples:
        >>> adjust_p_values(torch.tensor([0.01, 0.04, 0.03, 0.2]), "bh")
        tensor([0.0400, 0.0533, 0.0533, 0.2000])
    """
    check_choice("method", method, CORRECTIONS)
    if method == "none" or p.numel() == 0:
        return p.clone()
    flat = p.reshape(-1)
    m = flat.numel()
    order = torch.argsort(flat, stable=True)
    ranked = flat[order]
    i = torch.arange(1, m + 1, dtype=flat.dtype, device=flat.device)
    if method == "holm":
        adj = torch.cummax(((m - i + 1) * ranked).clamp(max=1.0), 0).values
    else:
        adj = torch.flip(torch.cummin(torch.flip((m * ranked / i).clamp(max=1.0), [0]), 0).values, [0])
    out = torch.empty_like(flat)
    out[order] = adj
    return out.view_as(p)


def shares(mean: Tensor, groups: Tensor, alternative: Alternative = "greater") -> Tensor:
    """Each effect's share of the strongest effect of its group (``groups``: integer ids).

    The strength is the mean effect itself for ``"greater"`` (negative effects get share 0) and
    its magnitude for ``"two-sided"``: ``share_e = strength_e / max_{e' in group(e)} strength_e'``
    (0 when the group's strongest effect is 0).

    Args:
        mean: the mean effects ``[E]``.
        groups: ``[E]`` integer group ids (non-negative) of the effects.
        alternative: ``"greater"`` (one-sided, effects above 0) or ``"two-sided"``.

    Examples:
        >>> shares(torch.tensor([2.0, 1.0, -4.0, 0.5]), torch.tensor([0, 0, 0, 1]))
        tensor([1.0000, 0.5000, 0.0000, 1.0000])
    """
    check_choice("alternative", alternative, ALTERNATIVES)
    strength = mean.clamp_min(0.0) if alternative == "greater" else mean.abs()
    if strength.numel() == 0:
        return strength.clone()
    top = torch.zeros(int(groups.max()) + 1, dtype=strength.dtype, device=strength.device)
    top = top.scatter_reduce(0, groups, strength, reduce="amax", include_self=True)
    denom = top[groups]
    return torch.where(denom > 0, strength / denom.clamp_min(torch.finfo(strength.dtype).tiny), torch.zeros_like(strength))
