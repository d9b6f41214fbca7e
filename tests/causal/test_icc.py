"""Intrinsic causal contributions: analytic linear-Gaussian and interaction SCMs, the reduction to
Sobol' indices for root nodes, exact Shapley weights, the AdditiveNoiseSCM contract, errors."""

import itertools
import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal.scm.scm import AdditiveNoiseSCM
from lightning_causal.causal.sensitivity.icc import intrinsic_causal_contributions, shapley_weights
from lightning_causal.causal.sensitivity.sobol import sobol_indices


class LinearGaussianSCM:
    """Private stub following the AdditiveNoiseSCM contract: x_j = b_j + sum_k W[j, k] x_k + u_j,
    u_j ~ N(0, std_j^2), W strictly lower triangular (columns in topological order)."""

    def __init__(self, columns, weights, std, bias=None):
        self.columns = list(columns)
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        self.noise_std = torch.as_tensor(std, dtype=torch.float64)
        self.bias = torch.zeros(len(columns), dtype=torch.float64) if bias is None else torch.as_tensor(bias).double()

    def sample_noise(self, n, generator=None):
        return torch.randn(n, len(self.columns), generator=generator, dtype=torch.float64) * self.noise_std

    def generate(self, noise):
        cols = []
        for j in range(len(self.columns)):
            parents = sum((self.weights[j, k] * cols[k] for k in range(j)), torch.zeros(noise.shape[0], dtype=noise.dtype))
            cols.append(self.bias[j] + parents + noise[:, j])
        return torch.stack(cols, 1)

    def sample(self, n, generator=None):
        return self.generate(self.sample_noise(n, generator))


def _covers(ci, values):
    return bool(((ci[:, 0] <= values) & (values <= ci[:, 1])).all())


CHAIN = LinearGaussianSCM(["x1", "x2", "x3"], [[0, 0, 0], [0.8, 0, 0], [0, -1.5, 0]], [1.0, 0.5, 2.0], [1.0, 0.0, 3.0])


def test_linear_gaussian_chain_is_analytic():
    """y = w.x = c.u with c = (I - W)^{-T} w, so every ICC (first, total, Shapley) is c_j^2 s_j^2 / sum."""
    w = torch.tensor([0.5, 1.0, -0.25], dtype=torch.float64)
    c = torch.linalg.solve((torch.eye(3, dtype=torch.float64) - CHAIN.weights).T, w)
    expected = (c * CHAIN.noise_std) ** 2 / ((c * CHAIN.noise_std) ** 2).sum()
    r = intrinsic_causal_contributions(lambda x: x @ w, CHAIN, n=2**14)
    assert r.names == ["x1", "x2", "x3"] and r.n_evaluations == 8 * 2**14
    for est, ci in ((r.first, r.first_ci), (r.total, r.total_ci), (r.shapley, r.shapley_ci)):
        assert torch.allclose(est, expected, atol=0.02), (est, expected)
        assert _covers(ci, expected)
    assert float(r.shapley.sum()) == pytest.approx(1.0, abs=1e-12)


def test_interaction_through_a_mediator():
    """x1 = u1, x2 = x1 + u2 (standard normal), y = x1 x2 = u1^2 + u1 u2, Var y = 3:
    S = (2/3, 0), ST = (1, 1/3), Shapley = (5/6, 1/6)."""
    scm = LinearGaussianSCM(["x1", "x2"], [[0, 0], [1.0, 0]], [1.0, 1.0])
    r = intrinsic_causal_contributions(lambda x: x[:, 0] * x[:, 1], scm, n=2**15)
    for est, ci, value in (
        (r.first, r.first_ci, [2 / 3, 0.0]),
        (r.total, r.total_ci, [1.0, 1 / 3]),
        (r.shapley, r.shapley_ci, [5 / 6, 1 / 6]),
    ):
        value = torch.tensor(value, dtype=torch.float64)
        assert torch.allclose(est, value, atol=0.04) and _covers(ci, value), (est, value)
    assert r.variance == pytest.approx(3.0, rel=0.1)


def test_root_nodes_reduce_to_sobol_indices_of_the_inputs():
    """All nodes roots: X = b + U, so ICC (first, total) = Sobol' indices of X drawn by the same
    sampler: identical numbers from the same generator."""
    scm = LinearGaussianSCM(["a", "b", "c"], torch.zeros(3, 3), [1.0, 2.0, 0.5], [1.0, -1.0, 2.0])
    f = lambda x: torch.sin(x[:, 0]) * x[:, 1] + x[:, 2] ** 2  # noqa: E731
    icc = intrinsic_causal_contributions(f, scm, n=2048, shapley=False, seed=5)
    sob = sobol_indices(f, lambda n, g: scm.sample(n, g), n=2048, seed=5)
    assert icc.shapley is None and icc.n_evaluations == sob.n_evaluations
    for key in ("first", "total", "first_ci", "total_ci"):
        assert torch.allclose(getattr(icc, key), getattr(sob, key), atol=1e-12)


def test_shapley_weights_match_permutation_definition():
    d = 4
    g = torch.Generator().manual_seed(0)
    v = torch.rand(2**d, generator=g, dtype=torch.float64)
    v[0] = 0.0
    brute = torch.zeros(d, dtype=torch.float64)
    for perm in itertools.permutations(range(d)):
        mask = 0
        for j in perm:
            brute[j] += v[mask | (1 << j)] - v[mask]
            mask |= 1 << j
    brute /= math.factorial(d)
    assert torch.allclose(v @ shapley_weights(d), brute, atol=1e-12)


def test_model_with_target_and_modes_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.3), nn.Linear(4, 2)).double().train()
    state = torch.get_rng_state()
    r = intrinsic_causal_contributions(model, CHAIN, n=512, target=1, shapley=False)
    assert model.training and model[1].training
    assert torch.equal(torch.get_rng_state(), state)
    weights = model[2].weight[1] @ model[0].weight  # dropout off in eval mode: linear model
    direct = intrinsic_causal_contributions(lambda x: x @ weights.detach(), CHAIN, n=512, shapley=False)
    assert torch.allclose(r.first, direct.first, atol=1e-10)


def test_to_dict_and_rows_include_shapley():
    r = intrinsic_causal_contributions(lambda x: x.sum(1), CHAIN, n=256, n_bootstrap=0)
    rows = r.to_rows()
    assert (rows[0]["group"], rows[0]["feature"]) == (0, "x1") and "shapley" in rows[0] and math.isnan(rows[0]["shapley_ci"][0])
    assert len(r.to_dict()["shapley"]) == 3


class _NoNoise:
    columns = ["a"]


class _WrongWidth(LinearGaussianSCM):
    def sample_noise(self, n, generator=None):
        return torch.zeros(n, 5, dtype=torch.float64)


def test_errors():
    with pytest.raises(TypeError, match="`scm` to provide `columns`, `sample_noise"):
        intrinsic_causal_contributions(lambda x: x.sum(1), _NoNoise())
    with pytest.raises(TypeError, match="`model_or_func` to be an nn.Module or a callable"):
        intrinsic_causal_contributions(3, CHAIN)
    big = LinearGaussianSCM([f"x{i}" for i in range(11)], torch.zeros(11, 11), torch.ones(11))
    with pytest.raises(ValueError, match="at most 10 SCM nodes for `shapley=True`.* got 11"):
        intrinsic_causal_contributions(lambda x: x.sum(1), big)
    with pytest.raises(ValueError, match=r"one noise per column \(2\) but got 5"):
        intrinsic_causal_contributions(lambda x: x.sum(1), _WrongWidth(["a", "b"], torch.zeros(2, 2), [1.0, 1.0]))
    with pytest.raises(ValueError, match="`target` .* for a model with 2 outputs"):
        intrinsic_causal_contributions(nn.Linear(3, 2).double(), CHAIN, n=64)
    with pytest.raises(ValueError, match="`n` to be an int >= 2"):
        intrinsic_causal_contributions(lambda x: x.sum(1), CHAIN, n=0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        intrinsic_causal_contributions(lambda x: x.sum(1).log(), CHAIN, n=64)


def test_constant_output_warns_and_gives_zeros():
    with pytest.warns(UserWarning, match="constant"):
        r = intrinsic_causal_contributions(lambda x: torch.zeros(x.shape[0]), CHAIN, n=64)
    assert torch.equal(r.shapley, torch.zeros(3, dtype=torch.float64)) and r.variance == 0.0


def test_fitted_additive_noise_scm_if_available():
    """With the real AdditiveNoiseSCM fitted on chain data, ICC approaches the analytic values."""
    scm_mod = pytest.importorskip("lightning_causal.causal.scm.scm")
    data = CHAIN.sample(20000, torch.Generator().manual_seed(0)).float()
    scm = scm_mod.AdditiveNoiseSCM(["x1", "x2", "x3"], {"x2": ["x1"], "x3": ["x2"]}).fit(data)
    w = torch.tensor([0.5, 1.0, -0.25])
    c = torch.linalg.solve((torch.eye(3, dtype=torch.float64) - CHAIN.weights).T, w.double())
    expected = (c * CHAIN.noise_std) ** 2 / ((c * CHAIN.noise_std) ** 2).sum()
    r = intrinsic_causal_contributions(lambda x: x @ w.to(x.dtype), scm, n=2**13)
    assert torch.allclose(r.shapley, expected, atol=0.03)
    assert torch.allclose(r.first, expected, atol=0.03)


def test_the_scm_rows_take_the_model_s_dtype():
    """An AdditiveNoiseSCM's float32 rows crashed a float64 or bf16 model ('mat1 and mat2 must have
    the same dtype'); the Sobol' path cast them, ICC did not."""

    class Float32Rows(LinearGaussianSCM):
        def generate(self, noise):
            return super().generate(noise).float()

    scm = Float32Rows(CHAIN.columns, CHAIN.weights, CHAIN.noise_std)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    want = intrinsic_causal_contributions(model, scm, n=256, target=1, shapley=False, n_bootstrap=0)
    got = intrinsic_causal_contributions(model.double(), scm, n=256, target=1, shapley=False, n_bootstrap=0)
    assert torch.allclose(got.first, want.first, atol=1e-5) and torch.allclose(got.total, want.total, atol=1e-5)
    half = intrinsic_causal_contributions(model.bfloat16(), scm, n=256, target=1, shapley=False, n_bootstrap=0)
    assert torch.allclose(half.total, want.total, atol=0.05)


def test_fractional_codes_generated_for_an_integer_column_are_named_in_a_warning():
    """A category code (4 levels) under the default Gaussian noise was generated as -2.9 .. 5.8 and
    fed to the model with no word (a model embedding x[:, 0].long() failed or read other codes)."""
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.randint(0, 4, (200,), generator=g).float(), torch.randn(200, generator=g)], 1)
    x[:, 1] += 0.5 * x[:, 0]
    func = lambda z: z[:, 0].clamp(0, 3).long().float() + z[:, 1]  # noqa: E731  a model reading the code
    gaussian = AdditiveNoiseSCM(["colour", "size"], {"size": ["colour"]}, codes=["colour"]).fit(x)
    with pytest.warns(UserWarning, match=r"category-code columns \['colour'\] .* noise='residuals'"):
        intrinsic_causal_contributions(func, gaussian, n=64, shapley=False, n_bootstrap=0)
    observed = AdditiveNoiseSCM(["colour", "size"], {"size": ["colour"]}, noise="residuals", codes=["colour"]).fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        intrinsic_causal_contributions(func, observed, n=64, shapley=False, n_bootstrap=0)
