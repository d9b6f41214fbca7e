"""perf_graph_s36: Student's t tail (``significance._beta_fraction``) runs its continued fraction in float64 NumPy, the
same operations in the same order as it ran on tensors: the p-values stay those of SciPy's t to 1e-12 (relative), and
those of a tensor Lentz loop bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_causal.causal.structure import significance
from lightning_causal.causal.structure.significance import p_values


def _tensor_fraction(a, b, x, eps=1e-14, max_iter=5_000):
    """The fraction as it ran on tensors before (Numerical Recipes' betacf, modified Lentz)."""
    def guard(v):
        return torch.where(v.abs() < 1e-300, torch.full_like(v, 1e-300), v)

    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = torch.ones_like(x), 1.0 / guard(1.0 - qab * x / qap)
    h = d.clone()
    for m in range(1, max_iter + 1):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d, c = 1.0 / guard(1.0 + aa * d), guard(1.0 + aa / c)
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d, c = 1.0 / guard(1.0 + aa * d), guard(1.0 + aa / c)
        delta = d * c
        h = h * delta
        if bool((((delta - 1.0).abs() <= eps) | ~torch.isfinite(delta)).all()):
            break
    return h


Z = torch.cat([torch.linspace(-40.0, 40.0, 401, dtype=torch.float64), torch.tensor([1e-3, -1e-3, 0.0, 1e3])])


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 15, 31, 63, 99, 127, 255, 2.5, 40.5, 1000])
def test_p_values_equal_scipys_t_to_1e_12(df):
    # a probe's samples per class; from about 1000 degrees of freedom the front factor's lgamma differences lose
    # digits (1.0e-12 at 1000, 6e-12 at 2000, as before this change: the same bits)
    rtol = 1e-12 if df < 1000 else 1e-11
    from scipy.stats import t as student

    for alternative in ("greater", "two-sided"):
        got = p_values(Z, alternative, df=df).numpy()
        sf = student.sf(np.abs(Z.numpy()), df)
        want = np.where(Z.numpy() >= 0, sf, 1.0 - sf) if alternative == "greater" else np.minimum(2.0 * sf, 1.0)
        keep = want > 1e-290  # SciPy's own underflow
        assert np.allclose(got[keep], want[keep], rtol=rtol, atol=0.0), (df, alternative)


def test_the_numpy_fraction_gives_the_tensor_loops_bits(monkeypatch):
    df = torch.randint(1, 300, Z.shape, generator=torch.Generator().manual_seed(0)).double()
    z = torch.cat([Z, torch.tensor([math.nan, math.inf])])
    df = torch.cat([df, torch.tensor([5.0, 5.0])])
    now = {alt: p_values(z, alt, df=df) for alt in ("greater", "two-sided")}
    monkeypatch.setattr(significance, "_beta_fraction", _tensor_fraction)
    for alt, p in now.items():
        assert torch.equal(torch.nan_to_num(p, nan=-1.0), torch.nan_to_num(p_values(z, alt, df=df), nan=-1.0)), alt


def test_a_tiny_statistic_keeps_the_cauchy_closed_form():
    # SciPy's t.sf(1e-8, 1) is 0.49999999526 (3e-9 off): the closed form is the reference there
    p = p_values(torch.tensor([1e-8], dtype=torch.float64), "greater", df=1)
    assert float(p) == pytest.approx(0.5 - math.atan(1e-8) / math.pi, rel=1e-15)


def test_a_zero_dimensional_statistic_gives_a_zero_dimensional_p_value():
    p = p_values(torch.tensor(2.0), "greater", df=3)
    assert p.shape == () and float(p) == pytest.approx(float(p_values(torch.tensor([2.0]), "greater", df=3)[0]), rel=0)
