"""Trial newuser16 (docs/methods.md read against the code): each *Cost* statement, counted.

Rows are counted with forward hooks on a tiny float64 MLP (`Linear 3→4, Tanh, Linear 4→3, Linear 3→2`):
the first layer counts every row the model runs, a layer after the cut only the rows that reach it. Every
stated cost is the estimator's own rows, exactly (intervened rows whose group already holds the baseline
skipped, as the page says); on top of it a call runs its clean pass over the `N` probe samples and a few
trial rows (two samples alone, a chunk-sizing trial, the noise check), which the page's opening now says.
Before this trial no test counted the rows behind a cost statement.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightning_causal.causal as c
from lightning_causal.baselines import perturbation_curve
from lightning_causal.causal.engine.batching import rows_alone
from lightning_causal.causal.sensitivity.pick_freeze import SPREAD_ROWS

N, G = 16, 3
TRIAL = 16  # the few trial rows a call adds (2 samples alone, 4 to size chunks, up to 8 for the noise check, ...)


class _Rows:
    """Rows through the first layer (every forward row) and through the layer after the cut at "1"."""

    def __init__(self, model: nn.Sequential) -> None:
        self.full = self.suffix = 0
        model[0].register_forward_hook(lambda m, i, o: self._add("full", o))
        model[2].register_forward_hook(lambda m, i, o: self._add("suffix", o))

    def _add(self, name: str, out: torch.Tensor) -> None:
        if not rows_alone():  # the stacked-rows check's rows run alone besides their chunk are not counted
            setattr(self, name, getattr(self, name) + out.shape[0])

    def reset(self) -> _Rows:
        self.full = self.suffix = 0
        return self


def _setup() -> tuple[nn.Sequential, torch.Tensor, _Rows]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3), nn.Linear(3, 2)).double().eval()
    x = torch.randn(N, G, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 3.0
    return model, x, _Rows(model)


def test_input_effects_and_ace_run_n_g_and_k_g_n_rows_plus_the_clean_pass():
    model, x, rows = _setup()
    c.input_effects(model, x, target=0, baseline=0.0)
    assert N * G + N <= rows.full <= N * G + N + TRIAL  # N·G intervened rows, the clean pass, trial rows
    full = rows.full
    x0 = x.clone()
    x0[:5, 1] = 0.0  # five rows of group 1 already hold the baseline: not run
    c.input_effects(model, x0, target=0, baseline=0.0)
    assert rows.full - full == full - 5
    rows.reset()
    c.input_effects(model, x, target=0, method="attribution")  # the clean pass, one forward and backward
    assert 2 * N <= rows.full <= 2 * N + TRIAL + 8  # + the gradient check's passes on two rows
    rows.reset()
    c.average_causal_effect(model, x, target=0)  # K = 8 quantiles
    assert 8 * G * N + N <= rows.full <= 8 * G * N + N + TRIAL


def test_unit_effects_and_carriers_run_u_n_suffix_rows_and_the_probe_once():
    model, x, rows = _setup()
    c.unit_effects(model, x, "1", target=0)  # U = 4 units after the Tanh
    # only the suffix runs the U·N rows: the first layer sees the probe run, the noise check (<= 8
    # samples) and trial rows, not U·N rows
    assert N <= rows.full <= N + 8 + TRIAL < 4 * N
    assert 4 * N <= rows.suffix - rows.full <= 4 * N + TRIAL // 2
    rows.reset()
    c.unit_effects(model, x, "1", [c.SetTo(0.0), c.SetTo(1.0)], target=0)  # a do-grid of 2: 2·U·N rows
    assert 8 * N <= rows.suffix - rows.full <= 8 * N + TRIAL // 2
    rows.reset()

    def flip(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        z[:, 0] = -z[:, 0]
        return z

    c.carrier_unit_effects(model, x, flip, "1")  # N·U suffix rows per layer
    assert rows.full <= 2 * N + TRIAL  # the factual and counterfactual runs, trial rows
    assert 4 * N <= rows.suffix - rows.full <= 4 * N + TRIAL // 2


def test_layer_map_and_deletion_curves_run_g_n_and_n_s_plus_1_rows():
    model, x, rows = _setup()
    c.layer_causal_map(model, x, layers=["0", "2"], target=0)
    # G·N intervened rows, the clean pass, the default-layer gradient read (<= 32 samples), trial rows
    assert G * N + N <= rows.full <= G * N + N + min(N, 32) + TRIAL
    rows.reset()
    mask = torch.arange(G)[None].expand(N, G)
    perturbation_curve(model, x, mask, torch.randn(N, G, dtype=torch.float64), target=0)  # S = G steps
    assert N * (G + 1) + N <= rows.full <= N * (G + 1) + N + TRIAL


@pytest.mark.parametrize("shapley", [False, True])
def test_sobol_and_icc_run_the_design_rows(shapley):
    model, _, _ = _setup()
    calls = [0]

    def func(z: torch.Tensor) -> torch.Tensor:
        calls[0] += 0 if rows_alone() else z.shape[0]  # the stacked-rows check's rows alone not counted
        return model(z)[:, 0]

    n = 64
    r = c.sobol_indices(func, c.IndependentNormal([0.0] * G, [1.0] * G), n=n, n_bootstrap=4)
    # + the noise check (8 rows) and the sample-independence check (2 of A's rows alone, then 2 more of them (leftovers_s40a),
    # then SPREAD_ROWS rows of its first chunk each alone, in passes of 2 rows)
    checks = 12 + 2 * SPREAD_ROWS
    assert r.n_evaluations == (G + 2) * n and (G + 2) * n <= calls[0] <= (G + 2) * n + checks
    scm = c.AdditiveNoiseSCM(["a", "b", "c"], {"b": ["a"], "c": ["b"]})
    scm.fit(torch.randn(256, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).cumsum(1))
    calls[0] = 0
    icc = c.intrinsic_causal_contributions(lambda z: func(z.double()), scm, n=n, shapley=shapley, n_bootstrap=4)
    design = 2**G * n if shapley else (G + 2) * n  # with Shapley the 2^D blocks hold the first/total order ones
    assert icc.n_evaluations == design and design <= calls[0] <= design + 18 + 2 * SPREAD_ROWS
