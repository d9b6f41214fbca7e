"""Sobol' estimators and their intervals against closed forms (newuser23 statistics trial; guards, no fault found).

``y = a x_1 + b x_2 + c x_1 x_3`` with independent uniform inputs on (0, 1), ``v = 1/12``:
``V = (a + c/2)² v + b² v + (c/2)² v + c² v²``; ``S_1 = (a + c/2)² v / V``, ``S_2 = b² v / V``,
``S_3 = (c/2)² v / V``; ``S_T,1 = S_1 + c² v² / V``, ``S_T,2 = S_2``, ``S_T,3 = S_3 + c² v² / V``.
"""

import math
import warnings

import pytest
import torch

from lightning_causal.causal import UniformCube
from lightning_causal.causal.sensitivity.sobol import sobol_indices

A, B, C, V1 = 1.0, 2.0, 4.0, 1 / 12
VAR = (A + C / 2) ** 2 * V1 + B**2 * V1 + (C / 2) ** 2 * V1 + C**2 * V1**2
FIRST = torch.tensor([(A + C / 2) ** 2 * V1, B**2 * V1, (C / 2) ** 2 * V1], dtype=torch.float64) / VAR
TOTAL = FIRST + torch.tensor([C**2 * V1**2, 0.0, C**2 * V1**2], dtype=torch.float64) / VAR


def _f(x: torch.Tensor) -> torch.Tensor:
    return A * x[:, 0] + B * x[:, 1] + C * x[:, 0] * x[:, 2]


def test_saltelli_and_jansen_approach_the_closed_form_as_n_grows():
    errors = []
    for n in (256, 4096):
        runs = [sobol_indices(_f, UniformCube(3), n=n, seed=s, n_bootstrap=0) for s in range(4)]
        est = torch.stack([torch.cat([r.first, r.total]) for r in runs])
        errors.append(float((est - torch.cat([FIRST, TOTAL])).abs().max()))
    assert errors[1] < 0.002 and errors[1] < errors[0] / 10, errors  # measured 0.030 -> 0.0001 (scrambled Sobol' points)


def test_monte_carlo_bootstrap_intervals_cover_the_closed_form_near_their_level():
    reps, covered = 40, 0
    sampler = lambda m, g: torch.rand(m, 3, generator=g, dtype=torch.float64)  # noqa: E731
    truth = torch.cat([FIRST, TOTAL])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in range(reps):
            r = sobol_indices(_f, sampler, n=256, seed=s, n_bootstrap=100)
            ci = torch.cat([r.first_ci, r.total_ci])
            covered += int(((ci[:, 0] <= truth) & (truth <= ci[:, 1])).sum())
    rate = covered / (6 * reps)  # 0.95 nominal; measured 0.95 here, 0.93-0.98 per index over 300 seeds
    assert 0.95 - 3.29 * math.sqrt(0.95 * 0.05 / reps) <= rate <= 1.0, rate


def test_replicate_scrambles_give_intervals_at_their_level_where_the_bootstrap_of_one_net_is_far_too_wide():
    # the rows of one scrambled Sobol' net are not independent draws: the row bootstrap's sd is 4-14x the
    # estimates' spread over scrambles (coverage 1.00 over 300 scrambles at n = 256); replicates=4 (four
    # independent nets of 64 rows, estimate +- t_3 sd / 2) covered at 0.93-0.96 over the same 300
    truth = torch.cat([FIRST, TOTAL])
    reps, covered, spread, boot_half = 40, 0, [], []
    for s in range(reps):
        one = sobol_indices(_f, UniformCube(3), n=256, seed=s, n_bootstrap=100)
        four = sobol_indices(_f, UniformCube(3), n=256, seed=s, replicates=4)
        ci = torch.cat([four.first_ci, four.total_ci])
        covered += int(((ci[:, 0] <= truth) & (truth <= ci[:, 1])).sum())
        spread.append(torch.cat([one.first, one.total]))
        boot_half.append(torch.cat([one.first_ci[:, 1] - one.first, one.total_ci[:, 1] - one.total]))
    rate = covered / (6 * reps)
    assert 0.95 - 3.29 * math.sqrt(0.95 * 0.05 / reps) <= rate <= 1.0, rate
    # the bootstrap of one net: half-widths several times 1.96 x its estimates' spread over scrambles (documented)
    ratio = torch.stack(boot_half).mean(0) / (1.96 * torch.stack(spread).std(0))
    assert bool((ratio > 2.5).all()), ratio
    assert sobol_indices(_f, UniformCube(3), n=256, seed=0, replicates=4, n_bootstrap=0).first_ci.isnan().all()


def test_replicates_of_a_monte_carlo_sampler_need_not_divide_n():
    sampler = lambda m, g: torch.rand(m, 3, generator=g, dtype=torch.float64)  # noqa: E731
    r = sobol_indices(_f, sampler, n=300, replicates=8)  # blocks of 37 and 38 rows (failed: 296 columns for 300 rows)
    assert r.n == 300 and bool(((r.first_ci[:, 0] < r.first) & (r.first < r.first_ci[:, 1])).all())



def test_replicate_intervals_are_the_pooled_estimate_plus_minus_t_times_the_blocks_spread():
    # fixed draws X, Y: with replicates=8 the estimates are those of all 300 rows, and the total-order half-width is
    # t_{7, 0.975} sd / √8 over the eight blocks' own estimates (blocks n k // K .. n (k + 1) // K: 37 or 38 rows),
    # each computed here by a separate sobol_indices on its rows (Jansen's total index is shift-invariant, so the
    # block's own centring gives the same estimate)
    from scipy import stats

    gen = torch.Generator().manual_seed(0)
    x, y = (torch.rand(300, 3, generator=gen, dtype=torch.float64) for _ in range(2))

    def fixed(rows):
        draws = iter([x[rows], y[rows]])
        return lambda m, g: next(draws)

    r = sobol_indices(_f, fixed(slice(None)), n=300, replicates=8)
    pooled = sobol_indices(_f, fixed(slice(None)), n=300, n_bootstrap=0)
    assert torch.equal(r.first, pooled.first) and torch.equal(r.total, pooled.total)
    block = torch.arange(300) * 8 // 300
    totals = torch.stack([sobol_indices(_f, fixed(block == k), n=int((block == k).sum()), n_bootstrap=0).total for k in range(8)])
    half = stats.t.ppf(0.975, 7) * totals.std(0) / math.sqrt(8)
    assert torch.allclose(r.total_ci[:, 1] - r.total, half, rtol=1e-9) and torch.allclose(r.total - r.total_ci[:, 0], half, rtol=1e-9)


def test_replicates_is_checked():
    for bad in (0, 3, 256, True):
        with pytest.raises((ValueError, TypeError), match="replicates"):
            sobol_indices(_f, UniformCube(3), n=256, replicates=bad)


def test_the_sobol_audit_passes_replicates():
    from lightning_causal.audits.base import Probe
    from lightning_causal.audits.sobol import SobolAudit
    from lightning_causal.models import MLP

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MLP(3)
    probe = Probe(torch.randn(64, 3, generator=torch.Generator().manual_seed(0)))
    one = SobolAudit(n=256, top_k=1).run(model, probe)
    four = SobolAudit(n=256, top_k=1, replicates=4).run(model, probe)
    width = [torch.tensor([row["ST_ci"][1] - row["ST_ci"][0] for row in r.tables["indices"]]) for r in (one, four)]
    assert not torch.equal(width[0], width[1])  # other intervals (and other points: four nets of 64)
    assert (one.meta["intervals"], four.meta["intervals"]) == ("bootstrap 100", "replicates 4")  # the report says which
    assert SobolAudit(n=256, n_bootstrap=0).run(model, probe).meta["intervals"] == "none"
    for row in four.tables["indices"]:
        assert row["S_ci"][0] < row["S"] < row["S_ci"][1] and row["ST_ci"][0] < row["ST"] < row["ST_ci"][1]
    with pytest.raises(ValueError, match="replicates"):
        SobolAudit(n=256, replicates=3)


def test_replicate_intervals_take_the_t_quantile_of_any_level():
    # K = 2 replicates: t with 1 degree of freedom (Cauchy), quantile tan(π c / 2) in closed form. The same seed
    # gives the same replicates at both levels, so the half-widths are in the ratio of the quantiles. The
    # quantile's bisection stopped at 1000 (6366 at c = 0.9999): intervals 6.4x too narrow, silently.
    half = {}
    for c in (0.95, 0.9999):
        r = sobol_indices(_f, UniformCube(3), n=64, seed=0, replicates=2, confidence=c)
        half[c] = torch.cat([r.first_ci[:, 1] - r.first, r.total_ci[:, 1] - r.total])
    want = math.tan(math.pi * 0.9999 / 2) / math.tan(math.pi * 0.95 / 2)  # 6366.2 / 12.706
    assert torch.allclose(half[0.9999] / half[0.95], torch.full((6,), want, dtype=torch.float64), rtol=1e-9)
