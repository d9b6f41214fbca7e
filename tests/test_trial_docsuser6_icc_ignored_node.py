"""The Shapley ICC of a node the model ignores, and its interval (docsuser6 statistics trial).

A linear-Gaussian SCM a -> b -> c, a -> c plus a root d that the model reads with weight 0: the truth is
ICC_j = c_j^2 sigma_j^2 / sum_k c_k^2 sigma_k^2 with c = (I - W)^-1 w (docs/methods.md), 0 for d. Its Shapley ICC
came out 1e-16 (the weighted sum v @ W of 2^D set values cancels only to round-off) and its 95% bootstrap
interval, as narrow, missed the truth 0 in 26 of 200 seeds (coverage 0.87). The differences v(T + j) - v(T),
exactly 0 for an ignored node, are now weighted, so the value and its interval are exactly 0, as ICC1 and ICCT are.
"""

import torch
from torch import nn

from lightning_causal.causal import intrinsic_causal_contributions
from lightning_causal.causal.scm import AdditiveNoiseSCM
from lightning_causal.causal.sensitivity import icc, shapley_weights

_COLS = ["a", "b", "c", "d"]
_COEF = {"b": {"a": 2.0}, "c": {"b": -1.0, "a": 0.5}}
_SIGMA = torch.tensor([1.0, 0.5, 1.5, 1.0], dtype=torch.float64)
_W_OUT = torch.tensor([1.0, -1.0, 0.8, 0.0], dtype=torch.float64)


def _truth() -> torch.Tensor:
    w = torch.zeros(4, 4, dtype=torch.float64)  # w[p, c]: the weight of parent p in child c
    for child, parents in _COEF.items():
        for parent, v in parents.items():
            w[_COLS.index(parent), _COLS.index(child)] = v
    c = torch.linalg.solve(torch.eye(4, dtype=torch.float64) - w, _W_OUT)
    share = c**2 * _SIGMA**2
    return share / share.sum()


def _model() -> nn.Module:
    model = nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(_W_OUT.float()[None]), model.bias.zero_()
    return model


def test_a_node_the_model_ignores_gets_exactly_zero_and_an_interval_that_holds_it():
    scm = AdditiveNoiseSCM.linear(_COLS, _COEF, noise_std=_SIGMA.tolist())
    truth = _truth()
    assert truth[3] == 0 and abs(float(truth.sum()) - 1) < 1e-12
    for seed in range(12):  # before: 0 < value 1e-16, and 2 of these 12 intervals left 0 out
        r = intrinsic_causal_contributions(_model(), scm, n=256, target=0, seed=seed, n_bootstrap=50)
        assert float(r.shapley[3]) == 0.0 and r.shapley_ci[3].tolist() == [0.0, 0.0], (seed, r.shapley[3], r.shapley_ci[3])
        assert float(r.first[3]) == 0.0 and float(r.total[3]) == 0.0
        assert abs(float(r.shapley.sum()) - 1.0) < 1e-12
        assert (r.shapley - truth).abs().max() < 0.15  # the others near the closed form (n = 256)


def test_the_shapley_values_still_equal_the_weight_matrix_product():
    # the differences form is the same number as v @ shapley_weights(d) for any set function
    scm = AdditiveNoiseSCM.linear(_COLS, _COEF, noise_std=_SIGMA.tolist())
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    torch.manual_seed(0)
    r = intrinsic_causal_contributions(model, scm, n=256, target=0, seed=3, n_bootstrap=0)
    assert abs(float(r.shapley.sum()) - 1.0) < 1e-12
    g = torch.Generator().manual_seed(0)
    for d in (1, 2, 3, 5):
        v = torch.rand(7, 2**d, generator=g, dtype=torch.float64)
        assert torch.allclose(icc._shapley(v), v @ shapley_weights(d), atol=1e-14, rtol=0)
