"""Sobol' indices: analytic values (Ishigami, linear, groups), SALib agreement, batching,
vectorised bootstrap, samplers, and every validation error."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.groups import patch_mask
from lightning_causal.causal.sensitivity.pick_freeze import bootstrap_counts
from lightning_causal.causal.sensitivity.samplers import (
    EmpiricalMarginals,
    GaussianCopula,
    IndependentNormal,
    UniformCube,
    class_probability,
)
from lightning_causal.causal.sensitivity.sobol import (
    pick_freeze_indices,
    scrambled_sobol,
    sobol_indices,
)

ISHIGAMI_S = torch.tensor([0.3139, 0.4424, 0.0], dtype=torch.float64)
ISHIGAMI_ST = torch.tensor([0.5576, 0.4424, 0.2437], dtype=torch.float64)


def ishigami(x, a=7.0, b=0.1):
    return torch.sin(x[:, 0]) + a * torch.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * torch.sin(x[:, 0])


def ishigami_np(x, a=7.0, b=0.1):
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


CUBE = UniformCube(3, -math.pi, math.pi)


def _covers(ci, values):
    return bool(((ci[:, 0] <= values) & (values <= ci[:, 1])).all())


def test_ishigami_quasi_random_matches_analytic_and_cis_cover():
    r = sobol_indices(ishigami, CUBE, n=2**14, seed=0)
    assert r.method == "sobol" and r.n == 2**14 and r.n_evaluations == 5 * 2**14
    assert torch.allclose(r.first, ISHIGAMI_S, atol=0.01), r.first
    assert torch.allclose(r.total, ISHIGAMI_ST, atol=0.01), r.total
    assert _covers(r.first_ci, ISHIGAMI_S) and _covers(r.total_ci, ISHIGAMI_ST)
    # Analytic variance of the Ishigami function: a^2/8 + b pi^4/5 + b^2 pi^8/18 + 1/2.
    var = 49 / 8 + 0.1 * math.pi**4 / 5 + 0.01 * math.pi**8 / 18 + 0.5
    assert r.variance == pytest.approx(var, rel=0.02)


def test_linear_model_independent_gaussians():
    w, std = torch.tensor([1.0, -2.0, 0.5, 3.0]), torch.tensor([2.0, 1.0, 3.0, 0.5])
    expected = (w * std) ** 2 / ((w * std) ** 2).sum()
    r = sobol_indices(lambda x: x @ w.double() + 4.0, IndependentNormal([1.0, 0.0, -1.0, 2.0], std), n=2**12)
    assert torch.allclose(r.first, expected.double(), atol=0.01)
    assert torch.allclose(r.total, expected.double(), atol=0.01)


def test_groups_are_swapped_together():
    # f = x0 * x1 + x2 on U(0,1)^3: Var(x0 x1) = 1/9 - 1/16 = 7/144, Var(x2) = 12/144.
    f = lambda x: x[:, 0] * x[:, 1] + x[:, 2]  # noqa: E731
    grouped = sobol_indices(f, UniformCube(3), n=2**13, groups=[0, 0, 1], names=["x0x1", "x2"])
    assert grouped.names == ["x0x1", "x2"]
    assert torch.allclose(grouped.first, torch.tensor([7 / 19, 12 / 19], dtype=torch.float64), atol=0.01)
    assert torch.allclose(grouped.total, grouped.first, atol=0.01)
    single = sobol_indices(f, UniformCube(3), n=2**13)
    assert single.first[0] == pytest.approx(3 / 19, abs=0.01)  # Var(x0 / 2) = 3/144: not the group's


def test_patch_mask_groups_equal_flat_groups_and_batching_is_invisible():
    mask = patch_mask((1, 4, 4), 2)  # [1, 1, 4, 4], 4 patches
    w = torch.linspace(-1, 1, 16, dtype=torch.float64)
    f = lambda x: torch.tanh(x @ w) + (x[:, 0] * x[:, 15])  # noqa: E731
    a = sobol_indices(f, UniformCube(16), n=512, groups=mask)
    b = sobol_indices(f, UniformCube(16), n=512, groups=mask.flatten().tolist(), max_batch_size=7)
    assert len(a.names) == 4 and a.n_evaluations == 6 * 512
    for key in ("first", "total", "first_ci", "total_ci"):
        assert torch.allclose(getattr(a, key), getattr(b, key), atol=1e-12)


def test_seeded_deterministic_and_global_rng_untouched():
    state = torch.get_rng_state()
    a = sobol_indices(ishigami, CUBE, n=256, seed=3)
    b = sobol_indices(ishigami, CUBE, n=256, generator=torch.Generator().manual_seed(3))
    c = sobol_indices(ishigami, CUBE, n=256, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.total_ci, b.total_ci) and not torch.equal(a.first, c.first)


def test_scrambled_sobol_points_are_a_randomised_net():
    """LMS + digital shift keeps the (t, m, s)-net stratification: one point per 1/n cell in every
    coordinate and one per 1/32 x 1/32 box of the first two; seeded; strictly inside (0, 1)."""
    u = scrambled_sobol(1024, 6, torch.Generator().manual_seed(0))
    assert u.shape == (1024, 6) and u.dtype == torch.float64 and 0 < u.min() and u.max() < 1
    cells = (u * 1024).floor().long()
    assert all(cells[:, j].unique().numel() == 1024 for j in range(6))
    assert ((u[:, 0] * 32).floor() * 32 + (u[:, 1] * 32).floor()).unique().numel() == 1024
    assert torch.equal(u, scrambled_sobol(1024, 6, torch.Generator().manual_seed(0)))
    assert not torch.equal(u, scrambled_sobol(1024, 6, torch.Generator().manual_seed(1)))
    # the scramble is random: the first point is not 0 and differs between seeds
    assert 0 < float(u[0, 0]) < 1


def test_scramble_is_a_uniform_shift_and_a_random_lower_triangular_matrix():
    """SciPy's LMS+shift, bit by bit, over 400 seeds: the first (unscrambled 0) point is the random
    shift, uniform on (0, 1); the second (unscrambled 1/2, the top bit) XOR the first is the
    matrix's column of the top bit: that bit always set and each lower bit set half of the time.
    Catches a missing shift, a missing (identity) matrix or an upper- instead of lower-triangular one."""
    seeds = 400
    u = torch.stack([scrambled_sobol(2, 3, torch.Generator().manual_seed(s)) for s in range(seeds)])  # [S, 2, 3]
    ints = (u * 2**30 - 0.5).round().long()
    first = u[:, 0].sort(0).values  # [S, 3]
    ecdf = torch.arange(1, seeds + 1, dtype=torch.float64).unsqueeze(1) / seeds
    assert float((first - ecdf).abs().max()) < 1.63 / math.sqrt(seeds)  # Kolmogorov-Smirnov at 1%
    column = ints[:, 1] ^ ints[:, 0]  # M applied to bit 29
    assert bool(((column >> 29) & 1).eq(1).all()) and bool((column >> 30).eq(0).all())
    freq = torch.stack([((column >> b) & 1).double().mean(0) for b in range(29)])  # [29, 3]
    assert float((freq - 0.5).abs().max()) < 0.1


def test_monte_carlo_sampler_keeps_n_and_estimates_linear_indices():
    std = torch.tensor([1.0, 2.0], dtype=torch.float64)

    def sampler(n, generator):
        return torch.randn(n, 2, generator=generator, dtype=torch.float64) * std

    r = sobol_indices(lambda x: x[:, 0] + x[:, 1], sampler, n=3000)
    assert r.method == "monte-carlo" and r.n == 3000
    assert torch.allclose(r.first, torch.tensor([0.2, 0.8], dtype=torch.float64), atol=0.05)
    assert _covers(r.first_ci, torch.tensor([0.2, 0.8], dtype=torch.float64))


def test_vectorised_bootstrap_equals_loop_over_resamples():
    g = torch.Generator().manual_seed(0)
    y_a, y_b, y_ab = torch.randn(50, generator=g), torch.randn(50, generator=g), torch.randn(3, 50, generator=g)
    y_a, y_b, y_ab = y_a.double(), y_b.double(), y_ab.double()
    idx = torch.randint(0, 50, (4, 50), generator=g)
    counts = torch.zeros(4, 50, dtype=torch.float64).scatter_add_(1, idx, torch.ones(4, 50, dtype=torch.float64))
    _, _, first_boot, total_boot, _ = pick_freeze_indices(y_a, y_b, y_ab, y_ab, counts=counts)
    for r in range(4):
        a, b, ab = y_a[idx[r]], y_b[idx[r]], y_ab[:, idx[r]]
        var = torch.cat([a, b]).var(unbiased=False)
        assert torch.allclose(first_boot[r], (b * (ab - a)).mean(1) / var)
        assert torch.allclose(total_boot[r], 0.5 * (a - ab).square().mean(1) / var)
    counts = bootstrap_counts(10, 6, torch.Generator().manual_seed(0))
    assert counts.shape == (6, 10) and torch.equal(counts.sum(1), torch.full((6,), 10.0, dtype=torch.float64))


def _salib_problem():
    return {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-math.pi, math.pi]] * 3}


def test_same_sample_matrices_give_salibs_estimates():
    """Fed SALib's own A and B, our estimators equal SALib's to round-off (same formulas and
    centring); the bootstrap half-widths agree to sampling error of 500 resamples (~5%)."""
    sample, analyze = pytest.importorskip("SALib.sample.sobol"), pytest.importorskip("SALib.analyze.sobol")
    n = 2**12
    x = sample.sample(_salib_problem(), n, calc_second_order=False, seed=1)
    si = analyze.analyze(_salib_problem(), ishigami_np(x), calc_second_order=False, num_resamples=500, seed=1)
    blocks = iter([torch.from_numpy(x[0::5]), torch.from_numpy(x[4::5])])  # SALib rows: A, AB_1..AB_3, B
    r = sobol_indices(ishigami, lambda m, g: next(blocks), n=n, n_bootstrap=500)
    assert np.allclose(r.first.numpy(), si["S1"], atol=1e-10)
    assert np.allclose(r.total.numpy(), si["ST"], atol=1e-10)
    half = (r.first_ci[:, 1] - r.first_ci[:, 0]).numpy() / 2
    half_t = (r.total_ci[:, 1] - r.total_ci[:, 0]).numpy() / 2
    assert np.allclose(half, si["S1_conf"], rtol=0.2) and np.allclose(half_t, si["ST_conf"], rtol=0.2)


def test_independent_scrambles_agree_with_salib_within_combined_intervals():
    """Same function and N, independent scrambles: the two estimates differ by less than the
    combined 95% half-widths sqrt(c_ours^2 + c_salib^2) (bootstrap intervals ignore the QMC
    variance reduction, so this is conservative), and both are within 0.01 of the truth."""
    sample, analyze = pytest.importorskip("SALib.sample.sobol"), pytest.importorskip("SALib.analyze.sobol")
    n = 2**13
    x = sample.sample(_salib_problem(), n, calc_second_order=False, seed=7)
    si = analyze.analyze(_salib_problem(), ishigami_np(x), calc_second_order=False, num_resamples=100, seed=7)
    r = sobol_indices(ishigami, CUBE, n=n, seed=7)
    for ours, ci, key in ((r.first, r.first_ci, "S1"), (r.total, r.total_ci, "ST")):
        half = (ci[:, 1] - ci[:, 0]).numpy() / 2
        tol = np.sqrt(half**2 + si[f"{key}_conf"] ** 2)
        assert (np.abs(ours.numpy() - si[key]) <= tol).all(), (ours, si[key], tol)
    assert np.allclose(si["S1"], ISHIGAMI_S.numpy(), atol=0.02)


def test_constant_function_warns_and_gives_zeros():
    with pytest.warns(UserWarning, match="constant"):
        r = sobol_indices(lambda x: torch.ones(x.shape[0]), UniformCube(2), n=64)
    assert torch.equal(r.first, torch.zeros(2, dtype=torch.float64)) and r.variance == 0.0


def test_non_power_of_two_is_rounded_up_with_a_warning():
    with pytest.warns(UserWarning, match="power of two.*rounded up to 1024"):
        r = sobol_indices(ishigami, CUBE, n=1000)
    assert r.n == 1024 and r.n_evaluations == 5 * 1024


class _BadShape:
    dim = 2

    def icdf(self, u):
        return torch.zeros(u.shape[0], 3)


@pytest.mark.parametrize(
    ("sampler", "match"),
    [
        (_BadShape(), r"`sampler.icdf` to return a tensor of shape \[256, 2\] but got \[256, 3\]"),
        (lambda n, g: torch.zeros(n), r"`sampler` to return a tensor of shape \[64, D\] but got \[64\]"),
        (lambda n, g: torch.zeros(n + 1, 2), r"shape \[64, D\] but got \[65, 2\]"),
        (lambda n, g: torch.full((n, 2), float("nan")), "finite inputs"),
    ],
)
def test_bad_sampler_output_is_rejected(sampler, match):
    with pytest.raises(ValueError, match=match):
        sobol_indices(lambda x: x.sum(1), sampler, n=64)


def test_sampler_changing_width_between_calls_is_rejected():
    widths = iter([2, 3])
    with pytest.raises(ValueError, match=r"shape \[64, 2\] but got \[64, 3\]"):
        sobol_indices(lambda x: x.sum(1), lambda n, g: torch.zeros(n, next(widths)), n=64)


def test_non_finite_outputs_are_rejected_naming_the_blocks():
    def f(x):
        y = x.sum(1)
        y[x[:, 0] > 0.9] = float("nan")
        return y

    with pytest.raises(ValueError, match=r"finite values but .* NaN or infinite \(blocks \['A', 'B'"):
        sobol_indices(f, UniformCube(2), n=64)
    with pytest.raises(ValueError, match="NaN or infinite"):
        sobol_indices(lambda x: 1.0 / (x[:, 0] * 0), UniformCube(2), n=64)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 1}, ValueError, "`n` to be an int >= 2 but got 1"),
        ({"n": 64.0}, ValueError, "`n` to be an int >= 2"),
        ({"n_bootstrap": 1}, ValueError, "`n_bootstrap` to be 0 .* or an int >= 2 but got 1"),
        ({"n_bootstrap": -3}, ValueError, "`n_bootstrap`"),
        ({"confidence": 1.0}, ValueError, r"`confidence` to be a number in \(0.0, 1.0\) but got 1.0"),
        ({"max_batch_size": 0}, ValueError, "`max_batch_size` to be None or a positive int but got 0"),
        ({"groups": [0, 1]}, ValueError, r"`groups` to have one id per input column \(3\) but got 2"),
        ({"groups": [0, 2, 2]}, ValueError, r"every id 0..2 but ids \[1\] are empty"),
        ({"groups": [0, -1, 1]}, ValueError, "non-negative group ids"),
        ({"groups": torch.tensor([0.0, 1.0, 1.0])}, TypeError, "integer group ids"),
        ({"groups": "abc"}, TypeError, "`groups` to be a tensor or a sequence"),
        ({"names": ["a"]}, ValueError, r"`names` to have one name per group \(3\) but got 1"),
        ({"seed": None}, TypeError, "`seed` to be an int"),
        ({"generator": 3}, TypeError, "`generator` to be a torch.Generator"),
        ({"sampler": 5}, TypeError, "`sampler` to have `dim` and `icdf"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"func": ishigami, "sampler": CUBE, "n": 64, **kwargs}
    with pytest.raises(error, match=match):
        sobol_indices(**args)


@pytest.mark.parametrize(
    ("func", "error", "match"),
    [
        (lambda x: x, ValueError, r"one value per row, shape \[320\] or \[320, 1\], but got \[320, 3\]"),
        (lambda x: x.sum(1).tolist(), TypeError, "`func` to return a tensor"),
    ],
)
def test_bad_func_outputs(func, error, match):
    with pytest.raises(error, match=match):
        sobol_indices(func, CUBE, n=64)


def test_to_dict_and_rows():
    r = sobol_indices(ishigami, CUBE, n=128, names=["a", "b", "c"])
    d = r.to_dict()
    assert d["names"] == ["a", "b", "c"] and len(d["first_ci"]) == 3 and d["n"] == 128
    rows = r.to_rows()
    assert (rows[1]["group"], rows[1]["feature"]) == (1, "b") and rows[1]["ST"] == pytest.approx(float(r.total[1]))
    assert rows[1]["ST_ci"][0] <= rows[1]["ST"] <= rows[1]["ST_ci"][1]
    none = sobol_indices(ishigami, CUBE, n=128, n_bootstrap=0)
    assert torch.isnan(none.first_ci).all() and torch.equal(none.first, r.first)


# --- samplers ---------------------------------------------------------------------------------


def test_empirical_marginals_reproduce_each_column_and_keep_sample_shape():
    data = torch.randn(64, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    s = EmpiricalMarginals(data)
    assert s.dim == 4 and s.sample_shape == (1, 2, 2)
    u = (torch.arange(64, dtype=torch.float64) + 0.5).div(64).unsqueeze(1).expand(64, 4)  # one point per quantile
    assert torch.equal(s.icdf(u), data.reshape(64, -1).sort(0).values)
    draws = s(1000, torch.Generator().manual_seed(1))
    assert draws.shape == (1000, 4) and draws.dtype == data.dtype
    assert torch.isin(draws[:, 2], data.reshape(64, -1)[:, 2]).all()


def test_gaussian_copula_keeps_rank_correlation_and_marginals():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, 2, generator=g)
    data = torch.stack([z[:, 0], 0.8 * z[:, 0] + 0.6 * z[:, 1]], 1).exp()  # lognormal, corr 0.8 in normal scores
    s = GaussianCopula(data)
    assert float(s.correlation[0, 1]) == pytest.approx(0.8, abs=0.02)
    x = s(4000, torch.Generator().manual_seed(1))
    ranks = x.argsort(0).argsort(0).double()
    spearman = float(torch.corrcoef(ranks.T)[0, 1])
    expected = 6 / math.pi * math.asin(0.8 / 2)  # Spearman's rho of a Gaussian copula
    assert spearman == pytest.approx(expected, abs=0.03)
    assert torch.isin(x[:, 1], data[:, 1]).all()


def test_gaussian_copula_indices_are_those_of_cholesky_innovations():
    """X1 ~ N(0,1), X2 = rho X1 + sqrt(1 - rho^2) e, f = X1 + X2: the innovation of column 1 moves
    X1 and rho X1 in X2, so S_1 = (1 + rho)^2 / V and S_2 = (1 - rho^2) / V, V = (1 + rho)^2 + 1 - rho^2."""
    rho, g = 0.6, torch.Generator().manual_seed(2)
    z = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    data = torch.stack([z[:, 0], rho * z[:, 0] + math.sqrt(1 - rho**2) * z[:, 1]], 1)
    r = sobol_indices(lambda x: x.sum(1), GaussianCopula(data), n=2**12)
    v = (1 + rho) ** 2 + 1 - rho**2
    expected = torch.tensor([(1 + rho) ** 2 / v, (1 - rho**2) / v], dtype=torch.float64)
    assert torch.allclose(r.first, expected, atol=0.02) and torch.allclose(r.total, expected, atol=0.02)
    independent = sobol_indices(lambda x: x.sum(1), EmpiricalMarginals(data), n=2**12)
    assert torch.allclose(independent.first, torch.tensor([0.5, 0.5], dtype=torch.float64), atol=0.02)


def test_constant_column_in_copula_is_harmless():
    data = torch.cat([torch.randn(100, 1, generator=torch.Generator().manual_seed(0)), torch.ones(100, 1)], 1)
    s = GaussianCopula(data)
    assert torch.equal(s.correlation, torch.eye(2, dtype=torch.float64))
    assert (s(10)[:, 1] == 1).all()


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (torch.zeros(1, 3), ValueError, r"\[N >= 2, ...\] but got \[1, 3\]"),
        (torch.zeros(5), ValueError, r"\[N >= 2, ...\] but got \[5\]"),
        (torch.tensor([[1.0, float("nan")], [0.0, 0.0]]), ValueError, "finite"),
        (torch.zeros(4, 2, dtype=torch.bool), TypeError, "floating-point or integer tensor"),  # codes are data (test_trial_sobol_codes.py)
    ],
)
def test_bad_sampler_data(data, error, match):
    for cls in (EmpiricalMarginals, GaussianCopula):
        with pytest.raises(error, match=match):
            cls(data)


def test_bad_simple_samplers():
    with pytest.raises(ValueError, match="`dim` to be a positive int"):
        UniformCube(0)
    with pytest.raises(ValueError, match="`high` to exceed `low`"):
        UniformCube(2, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"`low` to be a finite scalar or 2 values"):
        UniformCube(2, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="`std` to be positive"):
        IndependentNormal([0.0], 0.0)
    with pytest.raises(ValueError, match=r"`u` of shape \[n, 2\] but got \[3, 1\]"):
        UniformCube(2).icdf(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="`n` to be a positive int"):
        UniformCube(2)(0)
    with pytest.raises(ValueError, match="`ridge` to be a non-negative number"):
        GaussianCopula(torch.randn(4, 2), ridge=-1.0)


# --- classifiers as scalar functions ------------------------------------------------------------


def _classifier():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Dropout(0.5))


def test_class_probability_targets_and_modes():
    model = _classifier().train()
    x = torch.randn(6, 1, 2, 2)
    f = class_probability(model, target=2, input_shape=(1, 2, 2))
    with torch.no_grad():
        expected = model.eval()(x).softmax(1)[:, 2]
    model.train()
    assert torch.allclose(f(x.reshape(6, -1)), expected)  # eval mode (dropout off), reshaped rows
    assert model.training and model[2].training
    ref = class_probability(model, reference=x)
    assert ref.target == int(model.eval()(x).argmax(1).mode().values)
    z = torch.randn(5, 2)
    one = nn.Linear(2, 1)
    assert torch.allclose(class_probability(one, target=1)(z), one(z).sigmoid()[:, 0])
    raw = class_probability(nn.Linear(2, 3), target=1, probability=False)
    assert torch.allclose(raw(z), raw.model(z)[:, 1])


def test_class_probability_takes_the_samplers_float64_rows_on_a_float32_model():
    # UniformCube draws float64: a float32 model failed with "mat1 and mat2 must have the same dtype"
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    f = class_probability(model, target=1)
    r = sobol_indices(f, UniformCube(3), n=256, n_bootstrap=0)
    ref = sobol_indices(class_probability(copy.deepcopy(model).double(), target=1), UniformCube(3), n=256, n_bootstrap=0)
    torch.testing.assert_close(r.first, ref.first, atol=1e-5, rtol=0)
    assert model.weight.dtype == torch.float32


def test_class_probability_of_a_bf16_model_takes_the_softmax_in_float32():
    # a bf16 softmax kept a handful of distinct probabilities over a probe: the Sobol' variance was lost
    torch.manual_seed(0)
    model = nn.Linear(3, 2).bfloat16()
    x = torch.rand(256, 3, dtype=torch.float64)
    got = class_probability(model, target=1)(x)
    with torch.no_grad():
        ref = model(x.bfloat16()).float().softmax(1)[:, 1]
    assert got.dtype == torch.float32 and torch.equal(got, ref)
    assert got.unique().numel() > 100


def test_class_probability_errors():
    model = _classifier()
    with pytest.raises(ValueError, match="exactly one of `target` and `reference` but got neither"):
        class_probability(model)
    with pytest.raises(ValueError, match="but got both"):
        class_probability(model, 0, reference=torch.zeros(1, 4))
    with pytest.raises(ValueError, match="`target` to be a non-negative int but got -1"):
        class_probability(model, -1)
    with pytest.raises(TypeError, match="`model` to be a torch.nn.Module"):
        class_probability(lambda x: x, 0)
    with pytest.raises(ValueError, match=r"\[M, classes\] with class 5"):
        class_probability(model, 5)(torch.zeros(2, 4))


def test_a_module_passed_as_func_runs_in_eval_mode_in_its_own_dtype():
    # a module in train mode updated its BatchNorm statistics and applied dropout to the samples
    # (S_0 0.04 instead of 0.25), and a float32 module failed on the float64 samples
    from tests.helpers.models import seeded

    model = seeded(nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1)), 0)
    with torch.no_grad():
        model.train()(torch.randn(64, 3, generator=torch.Generator().manual_seed(0)))  # running statistics
    stats = [b.clone() for b in model.buffers()]
    sampler = IndependentNormal([0.0, 0.0, 0.0])
    in_train = sobol_indices(model, sampler, n=256, n_bootstrap=0)
    assert model.training and all(torch.equal(a, b) for a, b in zip(stats, model.buffers()))
    reference = sobol_indices(lambda x: model.eval()(x.float()).squeeze(1), sampler, n=256, n_bootstrap=0)
    torch.testing.assert_close(in_train.first, reference.first, rtol=0, atol=1e-12)
    linear = seeded(nn.Linear(3, 1), 1)  # float32: S_g = w_g^2 / sum w^2
    w2 = linear.weight.detach().double().squeeze(0) ** 2
    torch.testing.assert_close(sobol_indices(linear, sampler, n=4096, n_bootstrap=0).first, w2 / w2.sum(), atol=0.02, rtol=0)


def test_a_single_logit_has_the_two_classes_of_its_sigmoid():
    """One output z: target 0 returned sigmoid(z), i.e. P(class 1), under the name of class 0 (a
    figure titled "P(rejected)" showed P(accepted)), and target 1, which SobolAudit's validate
    allows ("the two classes of its sigmoid"), failed after sampling. Now P(1) = sigmoid(z),
    P(0) = sigmoid(-z), and a reference's target is the class its sigmoid predicts."""
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, -1.0]]))
        model.bias.fill_(0.5)
    z = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    logit = 2.0 * z[:, 0] - z[:, 1] + 0.5
    assert torch.allclose(class_probability(model, target=1)(z), torch.sigmoid(logit))
    assert torch.allclose(class_probability(model, target=0)(z), 1 - torch.sigmoid(logit))
    assert class_probability(model, reference=torch.tensor([[1.0, 0.0], [2.0, 0.0], [-3.0, 0.0]])).target == 1
    assert class_probability(model, reference=torch.tensor([[-1.0, 0.0], [-2.0, 0.0], [3.0, 0.0]])).target == 0
    assert class_probability(model, reference=z, probability=False).target == 0  # the raw output: one column
    with pytest.raises(ValueError, match=r"class 2 .*one output: the classes 0 and 1 of its sigmoid"):
        class_probability(model, target=2)(z)
    with pytest.raises(ValueError, match=r"class 1 but got shape \[7, 1\]"):
        class_probability(model, target=1, probability=False)(z)
