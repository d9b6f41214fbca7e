"""Audits as a reproducibility study runs them (newuser31 trial): which results a permuted probe may
change (only the randomised ones, whose draws go to rows by position, and those computed on the
first samples), a second run and ``torch.use_deterministic_algorithms(True)`` give the same numbers
bit for bit, a different ``seed=`` moves only the randomised ones, and the global random streams are
left where they were."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from lightning_causal import (
    AttributeFlip,
    CaptumBaseline,
    CausalGraphAudit,
    FairnessAudit,
    InputEffectAudit,
    LayerMapAudit,
    Probe,
    SobolAudit,
    UnitImportanceAudit,
    audit_model,
)

N = 24
PERM = torch.randperm(N, generator=torch.Generator().manual_seed(5))


def _setup():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)).double().eval()
    x = torch.randn(N, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x[:, 0] = (x[:, 0] > 0).double()  # a binary sensitive column
    with torch.no_grad():
        y = m(x).argmax(1)
    return m, x, y


def _audits(seed: int = 0):
    return [
        InputEffectAudit(ace_samples=None),
        UnitImportanceAudit(["0", "2"]),
        CausalGraphAudit(["0", "2"], seed=seed),
        LayerMapAudit(),
        SobolAudit(n=64, n_bootstrap=10, seed=seed),
        FairnessAudit(AttributeFlip(0)),
        CaptumBaseline(["IntegratedGradients", "FeatureAblation", "GradientShap"], seed=seed),
    ]


def _flat(results) -> dict[str, torch.Tensor]:
    out = {}
    for r in results:
        out.update({f"{r.audit}/{k}": torch.as_tensor(float(v), dtype=torch.float64) for k, v in r.scalars.items()})
        out.update({f"{r.audit}/{k}": torch.as_tensor(v).double() for k, v in r.vectors.items()})
    return out


def _randomised(key: str) -> bool:
    """Results of random draws, which go to the probe's rows by position (row i gets the i-th draw):
    the graph's bootstrap resamples and input noise, the stability metric's noise and GradientShap's
    baselines and alphas; the Sobol' design (drawn from the empirical marginals, whatever the order)."""
    return key.startswith(("causal_graph/stability_", "sobol/")) or key.endswith("/stability") or "/GradientShap" in key
#: per-sample results: a permuted probe permutes them
PER_SAMPLE = ("fairness/cf_delta",)


def test_a_permuted_probe_changes_only_results_drawn_by_row_and_permutes_per_sample_ones():
    m, x, y = _setup()
    a = _flat(audit_model(m, _audits(), Probe(x, y)))
    p = _flat(audit_model(m, _audits(), Probe(x[PERM], y[PERM])))
    assert a.keys() == p.keys()
    moved = []
    for key, value in a.items():
        if key in PER_SAMPLE:
            torch.testing.assert_close(p[key], value[PERM], atol=1e-10, rtol=0)
        elif not torch.allclose(p[key], value, atol=1e-10, rtol=0, equal_nan=True):
            moved.append(key)
    assert moved and all(_randomised(key) and not key.startswith("sobol/") for key in moved), moved


def test_audits_give_bit_identical_results_twice_and_under_deterministic_algorithms_and_leave_the_rng():
    m, x, y = _setup()
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(9)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    first = _flat(audit_model(m, _audits(), Probe(x, y)))
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]
    torch.manual_seed(999)  # another global state: the audits draw from their own seeds only
    second = _flat(audit_model(m, _audits(), Probe(x, y)))
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        third = _flat(audit_model(m, _audits()[::3], Probe(x, y)))
    finally:
        torch.use_deterministic_algorithms(previous)
    for key in first:
        assert torch.equal(first[key].nan_to_num(7.0), second[key].nan_to_num(7.0)), key
        assert key not in third or torch.equal(first[key].nan_to_num(7.0), third[key].nan_to_num(7.0)), key


@pytest.mark.filterwarnings("ignore")
def test_another_seed_moves_only_the_randomised_results():
    m, x, y = _setup()
    a, b = (_flat(audit_model(m, _audits(s)[2::2], Probe(x, y))) for s in (0, 1))
    moved = {k for k in a.keys() & b.keys() if not torch.equal(a[k].nan_to_num(7.0), b[k].nan_to_num(7.0))}
    assert moved and all(_randomised(k) for k in moved), moved
    assert any(k.startswith("sobol/") for k in moved) and any("GradientShap" in k for k in moved)
    for key in ("causal_graph/n_edges", "causal_graph/faithfulness", "captum_baseline/mean_abs/IntegratedGradients"):
        assert key not in moved
