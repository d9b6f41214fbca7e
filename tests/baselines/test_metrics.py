"""Comparison metrics: agreement, faithfulness (deletion / insertion), stability, Captum references."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torchmetrics.functional.regression import kendall_rank_corrcoef, spearman_corrcoef

from lightning_causal.baselines import metrics as M
from lightning_causal.causal.engine import groups as G
from lightning_causal.causal.engine import ranking as R
from tests.helpers.models import hand_linear


def rng_states() -> tuple:
    return torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def same_rng(a: tuple, b: tuple) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def _with_ties(seed: int, n: int = 6, g: int = 9) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4, (n, g), generator=gen).float()  # many ties


# ---------------------------------------------------------------- agreement


def test_spearman_identical_is_one_and_reversed_is_minus_one():
    a = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(R.spearman(a, a), torch.ones(5))
    assert torch.equal(R.spearman(a, -a), -torch.ones(5))
    assert torch.equal(R.spearman(a, a * 3 + 1), torch.ones(5))  # rank-based: monotone maps change nothing


def test_spearman_and_kendall_match_scipy_and_torchmetrics_with_ties():
    a, b = _with_ties(1), _with_ties(2)
    rho, tau = R.spearman(a, b), R.kendall(a, b)
    for i in range(a.shape[0]):
        assert rho[i].item() == pytest.approx(stats.spearmanr(a[i], b[i]).statistic, abs=1e-6)
        assert tau[i].item() == pytest.approx(stats.kendalltau(a[i], b[i]).statistic, abs=1e-6)  # tau-b
    assert torch.allclose(rho, spearman_corrcoef(a.T, b.T), atol=1e-4)  # torchmetrics adds an epsilon
    assert torch.allclose(tau, kendall_rank_corrcoef(a.T, b.T, variant="b"), atol=1e-6)


def test_kendall_is_independent_of_chunking():
    a, b = _with_ties(3, n=7), _with_ties(4, n=7)
    assert torch.allclose(R.kendall(a, b, max_batch_size=2), R.kendall(a, b), atol=0)


def test_rank_correlations_are_nan_for_constant_explanations():
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    b = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    assert R.spearman(a, b)[0] == -1 and math.isnan(R.spearman(a, b)[1])
    assert R.kendall(a, b)[0] == -1 and math.isnan(R.kendall(a, b)[1])


def test_average_ranks_share_ties():
    assert torch.equal(R.average_ranks(torch.tensor([[5.0, 1.0, 5.0, 3.0]])), torch.tensor([[3.5, 1.0, 3.5, 2.0]]))


def test_topk_overlap_literals():
    a = torch.tensor([[9.0, 8.0, 7.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    b = torch.tensor([[9.0, 0.0, 7.0, 8.0, 1.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    assert torch.allclose(R.topk_overlap(a, b, 3), torch.tensor([2 / 3, 1 / 3]))
    assert torch.equal(R.topk_overlap(a, b, 5), torch.ones(2))


@pytest.mark.parametrize("k", [0, 6, 1.5, True])
def test_topk_overlap_rejects_bad_k(k):
    with pytest.raises(ValueError, match="`k`"):
        R.topk_overlap(torch.zeros(1, 5), torch.zeros(1, 5), k)


def test_pairs_must_have_equal_shape():
    with pytest.raises(ValueError, match=r"one shape \[N, G\].*\[2, 3\] and \[2, 4\]"):
        R.spearman(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"one shape \[N, G\].*\[3\] and \[3\]; for one ranking of G groups pass a\[None\]"):
        R.kendall(torch.zeros(3), torch.zeros(3))


# ---------------------------------------------------------------- groups


def test_aggregate_and_broadcast_groups():
    x = torch.arange(8.0).view(2, 1, 2, 2)
    mask = torch.tensor([[[[0, 1], [1, 2]]]])
    assert torch.equal(G.aggregate_to_groups(x, mask), torch.tensor([[0.0, 3.0, 3.0], [4.0, 11.0, 7.0]]))
    assert torch.equal(G.aggregate_to_groups(x, mask, "mean"), torch.tensor([[0.0, 1.5, 3.0], [4.0, 5.5, 7.0]]))
    assert G.aggregate_to_groups(x, mask, num_groups=5).shape == (2, 5)
    back = G.broadcast_groups(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), mask, x.shape)
    assert torch.equal(back, torch.tensor([[[[1.0, 2.0], [2.0, 3.0]]], [[[4.0, 5.0], [5.0, 6.0]]]]))
    per_sample = torch.tensor([[0, 0, 1], [1, 0, 0]])  # masks may differ per sample
    assert torch.equal(G.aggregate_to_groups(torch.ones(2, 3), per_sample), torch.tensor([[2.0, 1.0], [2.0, 1.0]]))


def test_group_helpers_validate():
    with pytest.raises(ValueError, match="`reduction`"):
        G.aggregate_to_groups(torch.zeros(1, 3), torch.tensor([[0, 1, 2]]), "max")
    with pytest.raises(TypeError, match="integer tensor"):
        G.aggregate_to_groups(torch.zeros(1, 3), torch.tensor([[0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        G.aggregate_to_groups(torch.zeros(1, 3), torch.tensor([[0, -1, 2]]))
    with pytest.raises(ValueError, match="broadcastable"):
        G.broadcast_groups(torch.zeros(1, 3), torch.tensor([[0, 1]]), (1, 3))


# ---------------------------------------------------------------- faithfulness


@pytest.mark.parametrize("max_batch_size", [1, 3, None])
def test_deletion_and_insertion_of_a_linear_model_match_hand_computation(max_batch_size):
    # f(x) = 3 x0 - x1 + 2 x2 at x = (1, 1, 1): f = 4; ranking by contribution: x0, x2, x1
    model, x, mask = hand_linear([3.0, -1.0, 2.0]), torch.ones(1, 3), torch.tensor([[0, 1, 2]])
    scores = torch.tensor([[3.0, -1.0, 2.0]])
    frac, dele = M.perturbation_curve(model, x, mask, scores, mode="deletion", score="raw", max_batch_size=max_batch_size)
    assert torch.allclose(frac, torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]))
    assert torch.allclose(dele, torch.tensor([[4.0, 1.0, -1.0, 0.0]]))
    _, ins = M.perturbation_curve(model, x, mask, scores, mode="insertion", score="raw", max_batch_size=max_batch_size)
    assert torch.allclose(ins, torch.tensor([[0.0, 3.0, 5.0, 4.0]]))
    # trapezoids of width 1/3: (2.5 + 0 - 0.5) / 3 and (1.5 + 4 + 4.5) / 3
    assert M.curve_auc(frac, dele).item() == pytest.approx(2 / 3)
    assert M.curve_auc(frac, ins).item() == pytest.approx(10 / 3)


def test_curves_use_the_given_baseline_steps_and_per_sample_order():
    model = hand_linear([1.0, 1.0, 1.0, 1.0])
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    scores = x.clone()  # each sample removes its own largest feature first
    frac, dele = M.perturbation_curve(model, x, torch.tensor([[0, 1, 2, 3]]), scores, baseline=1.0, steps=2, score="raw")
    assert torch.allclose(frac, torch.tensor([0.0, 0.5, 1.0]))
    # removing the top two features (set to 1.0): 10 - 4 - 3 + 2 = 5 for both samples
    assert torch.allclose(dele, torch.tensor([[10.0, 5.0, 4.0], [10.0, 5.0, 4.0]]))


def _two_class_model(weights: list[float]) -> nn.Module:
    """Logits [w·x, 0]: the probability of class 0 depends on features in proportion to w."""
    lin = hand_linear(weights)
    return nn.Sequential(lin, nn.ConstantPad1d((0, 1), 0.0))


def test_influential_first_has_lower_deletion_and_higher_insertion_auc_than_random():
    weights = [4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.0, 0.0]
    model = _two_class_model(weights)
    x = torch.ones(16, 8)
    mask = torch.arange(8).unsqueeze(0)
    truth = torch.tensor(weights).expand(16, 8)
    rand = torch.rand(16, 8, generator=torch.Generator().manual_seed(0))
    auc = {}
    for name, s in {"truth": truth, "random": rand}.items():
        for mode in ("deletion", "insertion"):
            frac, c = M.perturbation_curve(model, x, mask, s, mode=mode, target=0)
            auc[name, mode] = M.curve_auc(frac, c).mean().item()
    assert auc["truth", "deletion"] < auc["random", "deletion"] - 0.05
    assert auc["truth", "insertion"] > auc["random", "insertion"] + 0.05


def test_curve_output_is_the_target_probability_for_classifiers():
    model = _two_class_model([1.0, 1.0])
    x = torch.tensor([[1.0, 1.0]])
    _, c = M.perturbation_curve(model, x, torch.tensor([[0, 1]]), torch.tensor([[1.0, 0.0]]), target=0)
    assert torch.allclose(c, torch.sigmoid(torch.tensor([[2.0, 1.0, 0.0]])))


def test_perturbation_curve_validates():
    model, x, mask, s = hand_linear([1.0, 1.0]), torch.ones(2, 2), torch.tensor([[0, 1]]), torch.ones(2, 2)
    with pytest.raises(ValueError, match="`mode`"):
        M.perturbation_curve(model, x, mask, s, mode="both")
    with pytest.raises(ValueError, match="`score`"):
        M.perturbation_curve(model, x, mask, s, score="logits")
    with pytest.raises(ValueError, match="`steps`"):
        M.perturbation_curve(model, x, mask, s, steps=0)
    with pytest.raises(ValueError, match="`scores`"):
        M.perturbation_curve(model, x, mask, torch.ones(2, 1))


# ---------------------------------------------------------------- stability and references


def test_stability_of_a_rank_preserving_explanation_is_one_and_rng_untouched():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]]).repeat(3, 1)
    state = rng_states()
    assert torch.equal(M.stability(lambda z: z * 2, x, sigma=1e-3), torch.ones(3))
    assert same_rng(rng_states(), state)


def test_stability_noise_scale_default_and_reproducibility():
    seen = []

    def explain(z):
        seen.append(z)
        return z

    x = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    a = M.stability(explain, x, noise_fraction=0.5, seed=3)
    b = M.stability(explain, x, noise_fraction=0.5, seed=3)
    assert torch.equal(a, b)
    noise_std = (seen[1] - x).std().item()
    assert noise_std == pytest.approx(0.5 * x.std().item(), rel=0.1)
    assert a.mean() < 0.99  # noise of half the std reorders some features
    assert M.stability(explain, x, sigma=0.0).eq(1).all()


def test_stability_validates():
    with pytest.raises(ValueError, match="`sigma`"):
        M.stability(lambda z: z, torch.ones(1, 3), sigma=-1.0)
    with pytest.raises(ValueError, match="`n_repeats`"):
        M.stability(lambda z: z, torch.ones(1, 3), n_repeats=0)


def test_sensitivity_of_a_linear_explanation_is_bounded_by_the_radius():
    x = torch.full((4, 9), 2.0)
    t = torch.zeros(4, dtype=torch.long)
    state = rng_states()
    s = M.sensitivity(lambda z, target: 2 * z, x, t, radius=0.1, n_perturb_samples=5, seed=1)
    assert same_rng(rng_states(), state)
    # ||2δ|| / ||2x|| <= 0.1 * 3 / 6 for a uniform δ in the L-inf ball of radius 0.1
    assert (s > 0).all() and (s <= 0.05 + 1e-6).all()
    assert torch.equal(s, M.sensitivity(lambda z, target: 2 * z, x, t, radius=0.1, n_perturb_samples=5, seed=1))
    with pytest.raises(ValueError, match="`n_perturb_samples`"):
        M.sensitivity(lambda z, target: z, x, t, radius=0.1, n_perturb_samples=0)


def test_infidelity_is_zero_for_exact_group_contributions_and_rng_untouched():
    model = hand_linear([1.0, -2.0, 0.5, 3.0], bias=0.7)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[0, 0, 1, 1]])
    baseline = 0.5  # contributions toward the baseline: w_i (x_i - b)
    exact = torch.stack([(x[:, 0] - 0.5) - 2 * (x[:, 1] - 0.5), 0.5 * (x[:, 2] - 0.5) + 3 * (x[:, 3] - 0.5)], 1)
    state = rng_states()
    assert M.infidelity(model, x, exact, mask, target=0, baseline=baseline, normalize=False).abs().max() < 1e-10
    assert same_rng(rng_states(), state)
    wrong = exact + torch.tensor([1.0, 0.0])
    inf = M.infidelity(model, x, wrong, mask, target=0, baseline=baseline, removal_probability=1.0, normalize=False)
    assert torch.allclose(inf, torch.ones(5), atol=1e-5)  # both groups removed: error 1 each time
    assert M.infidelity(model, x, exact * 2, mask, target=0, baseline=baseline).abs().max() < 1e-5  # normalize: scale is free


def test_infidelity_of_per_sample_groups_uses_each_sample_s_group_sizes():
    """Per-sample groups [N, D] of different sizes (a group absent from some samples): the exact
    contributions still have infidelity 0 (sizes averaged over the samples gave up to 9.8)."""
    model = hand_linear([1.0, -2.0, 0.5, 3.0])
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5], [0.5, -1.0, 2.0, 1.0], [2.0, 1.0, 1.0, -1.0]], dtype=torch.float64)
    mask = torch.tensor([[0, 0, 0, 1], [0, 1, 1, 1], [0, 1, 2, 2]])
    exact = torch.zeros(3, 3, dtype=torch.float64).scatter_add_(1, mask, x * torch.tensor([1.0, -2.0, 0.5, 3.0]))
    inf = M.infidelity(model.double(), x, exact, mask, target=0, n_perturb_samples=16, normalize=False)
    assert inf.abs().max() < 1e-10


def test_infidelity_validates():
    model, x, mask = hand_linear([1.0, 1.0]), torch.ones(2, 2), torch.tensor([[0, 1]])
    with pytest.raises(ValueError, match="`removal_probability`"):
        M.infidelity(model, x, torch.ones(2, 2), mask, removal_probability=0.0)
    with pytest.raises(ValueError, match="`n_perturb_samples`"):
        M.infidelity(model, x, torch.ones(2, 2), mask, n_perturb_samples=0)
