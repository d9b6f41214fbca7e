"""Properties a reproducibility study checks whatever the implementation (newuser31 trial): the
order of the probe's samples, the size of the passes, the torch thread count and a duplicated probe
change the core estimators' results by float rounding only; a linear model's effects scale with its
output and ignore a constant added to it; features it ignores get exactly 0, in the causal effects
and in Captum's methods. All in float64, where "rounding only" means 1e-10."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import causal as C
from lightning_causal.baselines import METHOD_NAMES, attribute

TOL = 1e-10
PERM = torch.tensor([3, 7, 0, 9, 1, 5, 2, 8, 6, 4])


class LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.head = nn.LSTM(4, 8, batch_first=True), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])


def _model(kind: str) -> tuple[nn.Module, torch.Tensor, list[str], dict]:
    """A float64 model in eval mode, a probe of 10 samples, two layers and the unit options of the first."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if kind == "mlp":
        m = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
        x, layers, unit = torch.randn(10, 6, generator=g), ["0", "2"], {}
    elif kind == "cnn":
        m = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 3, 3, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(3 * 3 * 3, 4))
        x, layers, unit = torch.randn(10, 1, 6, 6, generator=g), ["0", "3"], {}
    elif kind == "batchnorm":  # running statistics of its own, then eval mode
        m = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        with torch.no_grad():
            m(torch.randn(64, 6, generator=g) * 2 + 1)
        x, layers, unit = torch.randn(10, 6, generator=g), ["1", "3"], {}
    else:
        m = LSTMNet()
        x, layers, unit = torch.randn(10, 5, 4, generator=g), ["lstm", "head"], {"unit_dim": -1}
    return m.double().eval(), x.double(), layers, unit


KINDS = ["mlp", "cnn", "batchnorm", "lstm"]


def _close_edges(a, b) -> None:
    assert [e[:2] for e in a] == [e[:2] for e in b]
    for ea, eb in zip(a, b):
        assert abs(ea[2] - eb[2]) < TOL


@pytest.mark.parametrize("kind", KINDS)
def test_permuting_the_probe_permutes_per_sample_effects_and_keeps_probe_level_results(kind):
    m, x, layers, unit = _model(kind)
    xp = x[PERM]
    e = C.input_effects(m, x, target=1)
    torch.testing.assert_close(C.input_effects(m, xp, target=1), e[PERM], atol=TOL, rtol=0)
    u = C.unit_effects(m, x, layers[0], target=1, **unit)
    torch.testing.assert_close(C.unit_effects(m, xp, layers[0], target=1, **unit), u[PERM], atol=TOL, rtol=0)
    torch.testing.assert_close(C.average_causal_effect(m, xp, target=1), C.average_causal_effect(m, x, target=1),
                               atol=TOL, rtol=0)
    lm, lmp = C.layer_causal_map(m, x, layers=layers), C.layer_causal_map(m, xp, layers=layers)
    assert lm.nodes == lmp.nodes
    _close_edges(lm.edges, lmp.edges)
    torch.testing.assert_close(torch.as_tensor(lmp.cka), torch.as_tensor(lm.cka), atol=TOL, rtol=0)
    g, gp = C.causal_graph(m, x, layers, **unit), C.causal_graph(m, xp, layers, **unit)
    assert g.nodes == gp.nodes
    _close_edges(g.edges, gp.edges)


def test_mean_ablated_units_of_a_permuted_probe_are_the_permuted_effects():
    m, x, layers, _ = _model("mlp")
    with C.capture(m, ["2"]) as seen, torch.no_grad():
        m(x)
    u = C.unit_effects(m, x, "2", C.MeanOf(seen["2"]))
    torch.testing.assert_close(C.unit_effects(m, x[PERM], "2", C.MeanOf(seen["2"][PERM])), u[PERM], atol=TOL, rtol=0)


def test_sobol_and_icc_from_the_probe_do_not_depend_on_its_order():
    """EmpiricalMarginals reads each column's sorted values and an SCM's least squares fit a sum over
    the rows: a permuted probe gives the same design, bit for bit for the marginals."""
    m, x, _, _ = _model("mlp")
    x = torch.cat([x, x * 0.5 + 1])
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(3))

    def f(z):
        return m(z)[:, 0]

    a = C.sobol_indices(f, C.EmpiricalMarginals(x), n=64, n_bootstrap=0)
    b = C.sobol_indices(f, C.EmpiricalMarginals(x[perm]), n=64, n_bootstrap=0)
    assert torch.equal(a.first, b.first) and torch.equal(a.total, b.total)
    cols = [f"x{i}" for i in range(6)]

    def scm(data):
        s = C.AdditiveNoiseSCM(cols, {"x1": ["x0"], "x3": ["x1", "x2"]})
        s.fit(data)
        return s

    i, ip = (C.intrinsic_causal_contributions(m, scm(d), n=64, target=0, n_bootstrap=0) for d in (x, x[perm]))
    torch.testing.assert_close(ip.shapley, i.shapley, atol=1e-8, rtol=0)  # the fit's sums in another order


def test_counterfactual_search_of_a_sample_does_not_depend_on_the_other_samples():
    m, x, _, _ = _model("mlp")
    s = C.CounterfactualSettings(steps=30)
    full = C.counterfactual_explanation(m, x, 1, s).counterfactuals
    torch.testing.assert_close(C.counterfactual_explanation(m, x[PERM], 1, s).counterfactuals, full[PERM], atol=TOL, rtol=0)
    torch.testing.assert_close(C.counterfactual_explanation(m, x[4:5], 1, s).counterfactuals, full[4:5], atol=TOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rows", [1, 3, 7, 10])
def test_pass_size_changes_results_by_rounding_only(kind, rows):
    m, x, layers, unit = _model(kind)
    torch.testing.assert_close(C.input_effects(m, x, max_batch_size=rows), C.input_effects(m, x), atol=TOL, rtol=0)
    torch.testing.assert_close(C.unit_effects(m, x, layers[0], max_batch_size=rows, **unit),
                               C.unit_effects(m, x, layers[0], **unit), atol=TOL, rtol=0)
    torch.testing.assert_close(C.average_causal_effect(m, x, max_batch_size=rows), C.average_causal_effect(m, x),
                               atol=TOL, rtol=0)
    _close_edges(C.layer_causal_map(m, x, layers=layers, max_batch_size=rows).edges, C.layer_causal_map(m, x, layers=layers).edges)


def test_one_torch_thread_or_two_give_the_same_effects():
    m, x, layers, _ = _model("cnn")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = (C.input_effects(m, x), C.unit_effects(m, x, layers[1]))
        torch.set_num_threads(2)
        two = (C.input_effects(m, x), C.unit_effects(m, x, layers[1]))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two):
        torch.testing.assert_close(a, b, atol=TOL, rtol=0)


def test_a_duplicated_probe_keeps_every_mean():
    """Each sample twice: per-sample results twice, means, the layer map's responses and Sobol' indices
    from the empirical marginals unchanged. (The ACE's default quantile grid is not among them: linear
    quantiles of 2N values differ from those of N, docs/methods.md; a given grid is.)"""
    m, x, layers, _ = _model("mlp")
    xd = torch.cat([x, x])
    e = C.input_effects(m, x)
    torch.testing.assert_close(C.input_effects(m, xd), torch.cat([e, e]), atol=TOL, rtol=0)
    grid = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(C.average_causal_effect(m, xd, values=grid), C.average_causal_effect(m, x, values=grid),
                               atol=TOL, rtol=0)
    _close_edges(C.layer_causal_map(m, xd, layers=layers).edges, C.layer_causal_map(m, x, layers=layers).edges)
    a = C.sobol_indices(lambda z: m(z)[:, 0], C.EmpiricalMarginals(x), n=64, n_bootstrap=0)
    b = C.sobol_indices(lambda z: m(z)[:, 0], C.EmpiricalMarginals(xd), n=64, n_bootstrap=0)
    torch.testing.assert_close(b.first, a.first, atol=TOL, rtol=0)
    flip = C.AttributeFlip(0)
    xb = x.clone()
    xb[:, 0] = (x[:, 0] > 0).double()
    gap, gapd = C.counterfactual_fairness_gap(m, xb, flip), C.counterfactual_fairness_gap(m, torch.cat([xb, xb]), flip)
    for key in ("mean_abs", "max_abs", "mean", "flip_rate"):
        assert abs(gap[key] - gapd[key]) < TOL


class Affine(nn.Module):
    """``c * (W x) + b``: a linear model whose logits are scaled by ``c`` and shifted by ``b``."""

    def __init__(self, weight: torch.Tensor, c: float, b: float) -> None:
        super().__init__()
        self.weight, self.c, self.b = weight, c, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c * x @ self.weight.T + self.b


W = torch.tensor([[1.0, -2.0, 0.5, 0.0, 3.0, 0.0], [0.0, 1.0, -1.0, 0.0, 2.0, 0.0]], dtype=torch.float64)  # columns 3, 5 ignored
X_LIN = torch.randn(8, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def test_a_linear_models_effects_are_its_weights_times_the_change_scaled_with_its_output():
    plain, scaled, shifted = Affine(W, 1.0, 0.0), Affine(W, 2.5, 0.0), Affine(W, 1.0, 7.0)
    e = C.input_effects(plain, X_LIN, target=0)
    torch.testing.assert_close(e, X_LIN * W[0], atol=TOL, rtol=0)  # do(x_j := 0) moves logit 0 by w_j x_j
    torch.testing.assert_close(C.input_effects(scaled, X_LIN, target=0), 2.5 * e, atol=TOL, rtol=0)
    torch.testing.assert_close(C.input_effects(shifted, X_LIN, target=0), e, atol=TOL, rtol=0)
    assert torch.equal(e[:, [3, 5]], torch.zeros(8, 2, dtype=torch.float64))
    a = C.average_causal_effect(plain, X_LIN, target=0)
    torch.testing.assert_close(C.average_causal_effect(scaled, X_LIN, target=0), 2.5 * a, atol=TOL, rtol=0)
    torch.testing.assert_close(C.average_causal_effect(shifted, X_LIN, target=0), a, atol=TOL, rtol=0)
    assert torch.equal(a[[3, 5]], torch.zeros_like(a[[3, 5]]))


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.filterwarnings("ignore:Captum's .* overrides the backward pass")
def test_captum_methods_scale_with_a_linear_models_output_and_give_ignored_features_zero(method):
    """Every method of a linear model with baseline 0 is exact; ShapleyValueSampling's terms are summed
    in float32 by Captum (attribute's docstring), its float64 values hold float32 rounding."""
    tol = {"atol": 1e-6, "rtol": 1e-6} if method == "ShapleyValueSampling" else {"atol": TOL, "rtol": 0}
    plain, scaled, shifted = Affine(W, 1.0, 0.0), Affine(W, 2.5, 0.0), Affine(W, 1.0, 7.0)
    a = attribute(plain, X_LIN, method, target=0, generator=0)
    assert torch.equal(a[:, [3, 5]], torch.zeros(8, 2, dtype=torch.float64))
    torch.testing.assert_close(attribute(scaled, X_LIN, method, target=0, generator=0), 2.5 * a, **tol)
    torch.testing.assert_close(attribute(shifted, X_LIN, method, target=0, generator=0), a, **tol)
    torch.testing.assert_close(attribute(plain, X_LIN, method, target=0, generator=0, max_batch_size=3), a, **tol)


class _DropoutMLP(nn.Module):
    """A model that draws noise in eval mode (dropout kept on) and ignores input column 2."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 32), nn.Linear(32, 3)
        with torch.no_grad():
            self.a.weight[:, 2] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(nn.functional.dropout(self.a(x).relu(), 0.3, training=True))


@pytest.mark.filterwarnings("ignore:The model draws random numbers")
@pytest.mark.parametrize("rows", [None, 3, 7])
def test_a_noisy_models_ignored_feature_gets_exactly_zero_at_any_pass_size(rows):
    """Review of the change (docs/methods.md, engine/noise.py): common random numbers run a block's clean
    and intervened passes on the same rows, so a feature the model ignores gets effect 0 bit for bit at
    any max_batch_size (float32), and every intervention value the same expectation; the ACE, centred on
    the mean of those, holds 0 to that mean's rounding. (A deterministic model's intervened rows run in
    passes of other sizes than its clean pass: 0 to rounding only, docs/methods.md.)"""
    torch.manual_seed(0)
    m, x = _DropoutMLP().eval(), torch.randn(10, 6, generator=torch.Generator().manual_seed(4))
    e = C.input_effects(m, x, target=0, max_batch_size=rows)
    assert torch.equal(e[:, 2], torch.zeros(10)) and bool((e[:, [0, 1]] != 0).all())
    mu, _ = C.interventional_expectations(m, x, target=0, max_batch_size=rows)
    assert mu[2].unique().numel() == 1 and mu[0].unique().numel() > 1
    ace = C.average_causal_effect(m, x, target=0, max_batch_size=rows)
    assert float(ace[2].abs().max()) <= 4 * torch.finfo(torch.float32).eps * float(mu[2].abs().max())
