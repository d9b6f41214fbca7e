"""Shapley ICC of nodes a model ignores: exactly 0 (the dummy property), on an additive-noise SCM
whose analytic contributions are known."""

import torch

from lightning_causal.causal.scm.scm import AdditiveNoiseSCM
from lightning_causal.causal.sensitivity.icc import intrinsic_causal_contributions

# x2 = 0.8 x1 + N2, x3, x4 roots; noise sds 1, 0.5, 2, 1
SCM = AdditiveNoiseSCM.linear(["x1", "x2", "x3", "x4"], {"x2": {"x1": 0.8}}, noise_std=[1.0, 0.5, 2.0, 1.0])


def test_nodes_the_model_ignores_get_exactly_zero_shapley_icc():
    """A model of x1 alone: N2, N3, N4 move nothing, so v(T + j) = v(T) for every T and their Shapley
    ICC is 0 up to round-off (before: every ignored node got the same (1 - v(x1)) / D, +-0.01 at n = 2048, and x1 more than 1)."""
    r = intrinsic_causal_contributions(lambda x: torch.tanh(x[:, 0]) + 0.3 * x[:, 0] ** 2, SCM, n=2048, seed=0)
    assert float(r.shapley[1:].abs().max()) < 1e-12, r.shapley  # round-off of the weighted sum
    assert float(r.shapley_ci[1:].abs().max()) < 1e-12
    assert abs(float(r.shapley[0]) - 1.0) < 1e-12
    # first and total order are exactly 0 there, so the documented first <= Shapley <= total holds
    assert torch.equal(r.first[1:], torch.zeros(3, dtype=torch.float64)) and torch.equal(r.total[1:], r.first[1:])


def test_an_ignored_node_leaves_the_others_analytic():
    """y = x1 + 2 x2 + 0.5 x3 ignores x4: ICC_j = c_j^2 s_j^2 / sum with c = (1 + 0.8 * 2, 2, 0.5, 0)."""
    c = torch.tensor([2.6, 2.0, 0.5, 0.0], dtype=torch.float64)
    t = (c * torch.tensor([1.0, 0.5, 2.0, 1.0], dtype=torch.float64)) ** 2
    expected = t / t.sum()
    w = torch.tensor([1.0, 2.0, 0.5, 0.0])
    r = intrinsic_causal_contributions(lambda x: x @ w, SCM, n=4096, seed=1)
    assert abs(float(r.shapley[3])) < 1e-12
    assert torch.allclose(r.shapley, expected, atol=0.03), (r.shapley, expected)
    assert bool(((r.shapley_ci[:, 0] <= expected) & (expected <= r.shapley_ci[:, 1])).all())
    assert abs(float(r.shapley.sum()) - 1.0) < 1e-12
