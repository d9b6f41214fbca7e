"""Synthetic tabular data with a known SCM in which the counterfactually fair predictor is known.

Graph (columns ``a, m1, m2, x3``; the label ``y`` is not a column)::

    a ──> m1 ──> m2        a ~ Bernoulli(p_a)  (sensitive attribute, 0/1)
    a ──────────> m2       m1 = c_a1·a + u1,  m2 = c_a2·a + c_12·m1 + u2,  x3 = u3
    a, m1, m2, x3 ──> y    ℓ = b1·m1 + b2·m2 + b3·x3 + γ·a − ℓ̄,   y ~ Bernoulli(σ(ℓ))

``a`` acts on ``y`` directly (γ) and through the mediators ``m1``, ``m2``. By Kusner et al.
(2017, level 3) a predictor of the abducted noises ``(u1, u2, x3)`` is counterfactually fair;
the best one is ``p*(x) = E_a[σ(ℓ(a, u1, u2, x3))]`` (:meth:`SyntheticFairness.fair_probability`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from lightning_causal.causal.engine.checks import check_int, check_seed
from lightning_causal.causal.scm.scm import AdditiveNoiseSCM

__all__ = ["SyntheticFairness", "make_synthetic_fairness"]

COLUMNS = ("a", "m1", "m2", "x3")
#: Default structural coefficients: with them the Bayes classifier reaches ~85.7% accuracy and the
#: best counterfactually fair one ~84.7% (about 1 point is the price of ignoring a; 2·10^5 samples).
DEFAULTS = {"c_a1": 0.5, "c_a2": 0.3, "c_12": 0.5, "b1": 1.0, "b2": 1.0, "b3": 3.0, "gamma": 0.2, "p_a": 0.5}


@dataclass
class SyntheticFairness:
    """Samples and ground truth of :func:`make_synthetic_fairness`.

    Attributes:
        x: features ``[N, 4]`` (columns ``a, m1, m2, x3``).
        y: labels ``[N]`` (long, 0/1).
        scm: the true :class:`AdditiveNoiseSCM` (known coefficients, unit noises).
        params: the coefficients used.
        sensitive: the sensitive column name (``"a"``).
    """

    x: Tensor
    y: Tensor
    scm: AdditiveNoiseSCM
    params: dict[str, float] = field(default_factory=dict)
    sensitive: str = "a"

    @property
    def columns(self) -> list[str]:
        return list(self.scm.columns)

    def logit(self, x: Tensor) -> Tensor:
        """The true label logit ``ℓ(x)``: ``P(y = 1 | x) = σ(ℓ(x))``.

        Args:
            x: features ``[N, 4]`` (columns ``a, m1, m2, x3``), as in :attr:`x`.
        """
        p = self.params
        offset = p["b1"] * p["c_a1"] + p["b2"] * (p["c_a2"] + p["c_12"] * p["c_a1"]) + p["gamma"]
        return p["b1"] * x[:, 1] + p["b2"] * x[:, 2] + p["b3"] * x[:, 3] + p["gamma"] * x[:, 0] - offset * p["p_a"]

    def fair_features(self, x: Tensor) -> Tensor:
        """Kusner's level-3 inputs ``[N, 3]``: the abducted noises ``u1, u2`` and ``x3``.

        Args:
            x: features ``[N, 4]`` (columns ``a, m1, m2, x3``), as in :attr:`x`.
        """
        return self.scm.abduct(x)[:, 1:]

    def fair_probability(self, x: Tensor) -> Tensor:
        """The best counterfactually fair predictor ``p*(x) = Σ_a P(a) σ(ℓ(x | do(a)))`` ``[N]``.

        Args:
            x: features ``[N, 4]`` (columns ``a, m1, m2, x3``), as in :attr:`x`.
        """
        p_a = self.params["p_a"]
        x1 = self.scm.counterfactual(x, {"a": 1.0})
        x0 = self.scm.counterfactual(x, {"a": 0.0})
        return p_a * torch.sigmoid(self.logit(x1)) + (1 - p_a) * torch.sigmoid(self.logit(x0))


def make_synthetic_fairness(n: int = 4000, seed: int = 0, **params: float) -> SyntheticFairness:
    """Draw ``n`` samples of the synthetic fairness SCM (module docstring) with a private generator.

    Args:
        n: number of samples.
        seed: seed of the private generator (the global RNG is untouched).
        **params: overrides of :data:`DEFAULTS` (``c_a1, c_a2, c_12, b1, b2, b3, gamma, p_a``).

    Returns:
        :class:`SyntheticFairness` with ``x [n, 4]`` (float32), ``y [n]`` and the true SCM.

    Raises:
        ValueError: unknown parameter names, ``n < 1`` or ``p_a`` outside (0, 1).

    Examples:
        >>> data = make_synthetic_fairness(8, seed=0)
        >>> data.x.shape, data.columns, sorted(data.x[:, 0].unique().tolist())
        (torch.Size([8, 4]), ['a', 'm1', 'm2', 'x3'], [0.0, 1.0])
        >>> torch.allclose(data.fair_probability(data.x), data.fair_probability(data.scm.flip("a").flip_counterfactual(data.x)))
        True
    """
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Expected parameters among {sorted(DEFAULTS)} but got unknown {unknown}")
    check_int("n", n, minimum=1)
    check_seed(seed)
    p = {**DEFAULTS, **{k: float(v) for k, v in params.items()}}
    if not 0.0 < p["p_a"] < 1.0:
        raise ValueError(f"Expected argument `p_a` in (0, 1) but got {p['p_a']}")
    scm = AdditiveNoiseSCM.linear(
        COLUMNS,
        {"m1": {"a": p["c_a1"]}, "m2": {"a": p["c_a2"], "m1": p["c_12"]}},
        intercepts={"a": p["p_a"]},
        noise_std=[(p["p_a"] * (1 - p["p_a"])) ** 0.5, 1.0, 1.0, 1.0],
    )
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(n, generator=g) < p["p_a"]).float()
    u = torch.randn(n, 3, generator=g)
    noise = torch.cat([(a - p["p_a"]).unsqueeze(1), u], 1)
    x = scm.generate(noise)
    x[:, 0] = a  # exactly 0/1 whatever p_a's rounding
    data = SyntheticFairness(x, torch.zeros(n, dtype=torch.long), scm, p)
    data.y = (torch.rand(n, generator=g) < torch.sigmoid(data.logit(x))).long()
    return data
