"""The tests that select a causal graph's nodes and edges: paired z-tests over the probe, one- or
two-sided p-values, multiple-testing corrections (Holm 1979; Benjamini & Hochberg 1995) and the
share of the strongest effect in a group.

Examples:
    >>> d = torch.tensor([[2.0, 4.0, 6.0, 8.0]])
    >>> mean, se, z = paired_z(d)
    >>> round(float(z), 4), round(float(p_values(z, "greater")), 8)
    (3.873, 5.376e-05)
    >>> adjust_p_values(torch.tensor([0.01, 0.04, 0.03]), "holm")
    tensor([0.0300, 0.0600, 0.0600])
"""

from __future__ import annotations

import math
from typing import Literal, get_args

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


def p_values(z: Tensor, alternative: Alternative = "greater") -> Tensor:
    """Normal p-values: ``1 - Φ(z)`` (``"greater"``) or ``2 (1 - Φ(|z|))`` (``"two-sided"``).

    Args:
        z: z-scores (any shape).
        alternative: ``"greater"`` (one-sided, effects above 0) or ``"two-sided"``.
    """
    check_choice("alternative", alternative, ALTERNATIVES)
    z = z.double()
    if alternative == "greater":
        return 0.5 * torch.special.erfc(z / math.sqrt(2.0))
    return torch.special.erfc(z.abs() / math.sqrt(2.0))


def z_critical(alpha: float, alternative: Alternative = "greater") -> float:
    """The z a single test must reach: ``Φ⁻¹(1 - α)`` (1.645 at 0.05) or ``Φ⁻¹(1 - α/2)`` two-sided.

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
