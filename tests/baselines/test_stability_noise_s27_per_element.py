"""One noise rule for every stability measure: ``noise`` standard deviations of each input element over the probe's
samples (``causal.engine.input_noise.input_noise_sd``), in the baseline comparison as in ``graph_stability``.

``baselines.metrics.stability`` (``CaptumBaseline``'s ``stability`` scalars) drew ``x + σ ε`` with
``σ = noise_fraction · std(all the probe's values)`` (``default_sigma``), and ``sensitivity_max`` drew in a box of
that radius: on a table with columns of sd 1 and sd 1000 that std is ~707, so at the default 0.1 the column of sd 1
moved by ~71 of its own standard deviations, and every method's stability was measured on noise (on the mixed table
of /tmp/stability_noise_s27/mixed.py the causal explanation read -0.02, IntegratedGradients 0.08; 0.95 and 0.95 now).
"""

import math

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings
from lightning_causal.audits.base import Probe
from lightning_causal.baselines import metrics as M
from lightning_causal.causal.engine.input_noise import element_sd, input_noise_sd, varies

# column 0: -1, 1, -1, 1 (mean 0, Σ(x - mean)² = 4, sd = sqrt(4 / 3)); column 1 the same times 1000
_X = torch.tensor([[-1.0, -1000.0], [1.0, 1000.0], [-1.0, -1000.0], [1.0, 1000.0]], dtype=torch.float64)
_SD = torch.tensor([[math.sqrt(4 / 3), 1000 * math.sqrt(4 / 3)]], dtype=torch.float64)


def test_the_noise_sd_of_each_column_is_its_own_sd_over_the_samples_times_the_share():
    torch.testing.assert_close(element_sd(_X), _SD, rtol=1e-12, atol=0)
    torch.testing.assert_close(input_noise_sd(_X, 0.1), 0.1 * _SD, rtol=1e-12, atol=0)
    image = torch.zeros(3, 1, 2, 2)
    image[:, 0, 0, 0] = torch.tensor([0.0, 1.0, 2.0])  # one pixel varies, the others are a blank border
    assert element_sd(image)[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert not varies(_X[:1]) and not varies(torch.ones(3, 2)) and varies(_X) and not varies(_X.long())


def test_stability_adds_to_each_column_noise_of_its_own_scale():
    seen = []

    def explain(z):
        seen.append(z.clone())
        return z / torch.tensor([1.0, 1000.0], dtype=z.dtype)

    M.stability(explain, _X, noise_fraction=0.1, seed=5)
    eps = torch.randn(_X.shape, generator=torch.Generator().manual_seed(5), dtype=_X.dtype)  # the private generator's draw
    # before: 0.1 * std of all 8 values (755.9) for both columns
    torch.testing.assert_close(seen[1] - _X, 0.1 * _SD * eps, rtol=1e-9, atol=1e-12)


def test_a_probe_with_no_spread_gets_no_stability_rather_than_one():
    with pytest.raises(ValueError, match=r"no element of the \[1, 2\] inputs varies .*`sigma=`"):
        M.stability(lambda z: z, _X[:1])
    assert M.stability(lambda z: z * 2, _X[:1], sigma=0.01).eq(1).all()  # an explicit σ still runs
    model = nn.Linear(2, 3).double()
    with pytest.warns(UserWarning, match=r"no stability: no element of the probe's \[1, 2\] input varies .*`noise_sigma=`"):
        r = CaptumBaseline(("Saliency",), settings=CompareSettings(reference_metrics=True)).run(model, Probe(_X[:1]))
    assert not any("stability" in k or "sensitivity" in k for k in r.scalars) and "infidelity" in r.scalars  # before: noise of the one row's std of all values
    assert any(n.startswith("no stability") for n in r.meta["notes"])
    r = CaptumBaseline(("Saliency",), noise_sigma=0.1).run(model, Probe(_X[:1]))  # a σ given: measured
    assert r.scalars["compare/Saliency/stability"] == 1.0


def test_sensitivity_draws_in_a_box_of_each_columns_own_radius():
    seen = []

    def explain(z, t):
        seen.append(z.clone())
        return z

    M.sensitivity(explain, _X, torch.zeros(4, dtype=torch.long), input_noise_sd(_X, 0.1), n_perturb_samples=64, seed=0)
    delta = torch.cat([z for z in seen if z.shape[0] > 4]).view(4, 64, 2) - _X[:, None]
    # uniform in [-r_e, r_e], r_e = 0.1 sd_e: the largest draws reach close to r_e in each column (before: 75.6 in both)
    reach = delta.abs().amax((0, 1))
    assert (reach <= 0.1 * _SD[0]).all() and (reach > 0.095 * _SD[0]).all(), reach


def test_captum_baselines_noisy_probe_moves_each_column_by_its_own_share():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=g, dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0) * torch.tensor([1.0, 1000.0], dtype=torch.float64)  # column sds exactly 1 and 1000
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    seen = []
    model[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    r = CaptumBaseline(("Saliency",), seed=0).run(model, Probe(x))
    cols = [set(x[:, j].tolist()) for j in range(2)]  # the causal effects' rows keep one column of the probe
    noisy = [z for z in seen if z.shape == x.shape and not any(v in cols[0] for v in z[:, 0].tolist())]
    assert noisy, "no noisy copy of the probe reached the model"
    for z in noisy:
        # 0.1 and 100 (before: 70.7 for both, 0.1 * the std of all values); 400 draws: within 15% of the sd
        torch.testing.assert_close((z - x).std(0), torch.tensor([0.1, 100.0], dtype=torch.float64), rtol=0.15, atol=0)
    assert r.meta["sigma"] == "0.1 standard deviations of each input element over the probe's samples"


def test_graph_stability_of_one_sample_builds_no_noisy_graph():
    """One sample has no spread over the samples: the noisy graph would be the graph itself (noise_jaccard 1.0)."""
    from lightning_causal.causal import graph_stability

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).double()
    stab = graph_stability(model, _X[:1], ["1"], top_k=2, resamples=1, noise=0.05, seed=0)
    assert math.isnan(stab["noise_jaccard"])
    assert not math.isnan(graph_stability(model, _X, ["1"], top_k=2, resamples=1, noise=0.05, seed=0)["noise_jaccard"])
