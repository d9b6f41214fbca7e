"""Sobol' indices are scale-invariant, but the constant-output check was absolute for outputs below 1:
a rare class's probability, about 1e-11 and varying by 1% with one input, was 'constant on the
sample' and got zeros (sobol_indices, SobolAudit and intrinsic_causal_contributions alike)."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit
from lightning_causal.causal import (
    AdditiveNoiseSCM,
    UniformCube,
    intrinsic_causal_contributions,
    sobol_indices,
)


def _no_warning_call(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


def test_a_tiny_output_that_varies_has_its_indices():
    # y = 1e-11 * exp(x0 / 50): x0 alone moves it (S = S_T = 1 for x0, 0 for x1)
    r = _no_warning_call(lambda: sobol_indices(lambda x: 1e-11 * torch.exp(x[:, 0] / 50), UniformCube(2, -1.0, 1.0), 256))
    assert abs(float(r.first[0]) - 1) < 0.01 and abs(float(r.total[0]) - 1) < 0.01 and float(r.total[1]) == 0.0
    scm = AdditiveNoiseSCM.linear(["a", "b"], {"b": {"a": 1.0}})
    icc = _no_warning_call(lambda: intrinsic_causal_contributions(lambda x: 1e-11 * torch.exp(x[:, 1] / 50), scm, 1024))
    assert abs(float(icc.shapley.sum()) - 1) < 1e-9 and abs(float(icc.shapley[0]) - 0.5) < 0.05


def test_the_audit_explains_a_rare_class():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[1, 0] = 0.01
        model.bias.copy_(torch.tensor([0.0, 25.0]))  # P(class 0) ~ 1e-11, moved by x0 alone
    x = torch.randn(128, 3, generator=torch.Generator().manual_seed(0))
    r = _no_warning_call(lambda: SobolAudit(n=256, target=0, n_bootstrap=0).run(model, Probe(x)))
    assert float(r.vectors["total"][0]) > 0.95 and float(r.vectors["total"][1:].abs().max()) == 0.0


def test_an_exactly_constant_output_still_warns_and_gives_zeros():
    for value in (0.0, 3.0, 1e-11):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = sobol_indices(lambda x, v=value: torch.full((x.shape[0],), v, dtype=torch.float64), UniformCube(2), 64)
        assert any("constant" in str(w.message) for w in caught) and torch.equal(r.first, torch.zeros(2, dtype=torch.float64))
