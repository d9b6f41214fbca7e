"""Counterfactual fairness gap, group metrics and carrier units against analytic values and references."""

import math

import pytest
import torch
from torch import nn
from torchmetrics.functional.classification import demographic_parity, equal_opportunity

from lightning_causal.causal.scm.fairness import (
    carrier_unit_effects,
    counterfactual_fairness_gap,
    demographic_parity_difference,
    equalized_odds_difference,
    group_rates,
    probabilities,
)
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness


def _linear(weights, bias=(0.0, 0.0)) -> nn.Linear:
    m = nn.Linear(len(weights[0]), len(weights))
    with torch.no_grad():
        m.weight.copy_(torch.tensor(weights))
        m.bias.copy_(torch.tensor(bias))
    return m


@pytest.fixture(scope="module")
def data():
    return make_synthetic_fairness(400, seed=0)


def test_predictor_ignoring_a_and_descendants_has_zero_gap(data):
    model = _linear([[0.0, 0.0, 0.0, -2.0], [0.0, 0.0, 0.0, 2.0]])  # uses x3 only (not a descendant of a)
    gap = counterfactual_fairness_gap(model, data.x, data.scm, "a")
    assert gap["changed"] == 1.0  # every row flips
    assert gap["mean_abs"] == 0.0 and gap["max_abs"] == 0.0 and gap["flip_rate"] == 0.0


def test_predictor_using_only_a_has_gap_equal_to_its_effect(data):
    w, b = 1.2, -0.5
    model = _linear([[0.0] * 4, [w, 0.0, 0.0, 0.0]], bias=(0.0, b))
    gap = counterfactual_fairness_gap(model, data.x, data.scm.flip("a"), target=1)
    effect = torch.sigmoid(torch.tensor(w + b)) - torch.sigmoid(torch.tensor(b))  # p1(a=1) - p1(a=0)
    assert gap["mean_abs"] == pytest.approx(float(effect), abs=1e-6)
    assert gap["max_abs"] == pytest.approx(float(effect), abs=1e-6)
    sign = torch.where(data.x[:, 0] == 0, 1.0, -1.0)
    torch.testing.assert_close(gap["delta"], sign * effect)
    # decisions: a=1 -> logit 0.7 > 0 (class 1), a=0 -> -0.5 (class 0): every decision flips
    assert gap["flip_rate"] == 1.0


def test_mediated_effect_counts_in_the_scm_gap_not_in_the_flip_gap(data):
    from lightning_causal.causal.scm.attribute_flip import AttributeFlip

    model = _linear([[0.0] * 4, [0.0, 1.0, 0.0, 0.0]])  # uses the mediator m1 only
    scm_gap = counterfactual_fairness_gap(model, data.x, data.scm.flip("a"), target=1)
    flip_gap = counterfactual_fairness_gap(model, data.x, AttributeFlip(0), target=1)
    assert flip_gap["mean_abs"] == 0.0 and scm_gap["mean_abs"] > 0.05


def test_gap_restores_mode_and_accepts_single_logit_models(data):
    model = nn.Sequential(nn.Linear(4, 1), nn.Dropout(0.5)).train()
    x_cf = data.scm.flip("a").flip_counterfactual(data.x)
    g1 = counterfactual_fairness_gap(model, data.x, lambda x: x_cf, max_batch_size=7)  # precomputed counterfactuals
    g2 = counterfactual_fairness_gap(model, data.x, data.scm.flip("a"))
    assert model.training and model[1].training
    assert g1["mean_abs"] == pytest.approx(g2["mean_abs"], abs=1e-7)  # eval mode: dropout off, chunking irrelevant
    torch.testing.assert_close(probabilities(torch.tensor([[0.0], [math.log(3.0)]])), torch.tensor([[0.5, 0.5], [0.25, 0.75]]))


def test_group_metrics_equal_hand_computation_and_torchmetrics():
    preds = torch.tensor([1, 0, 1, 1, 0, 1, 0, 0, 1, 1])
    labels = torch.tensor([1, 0, 0, 1, 1, 1, 0, 1, 0, 0])
    groups = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    # group 0: positive rate 3/5; TPR 2/3 (y=1 at 0,3,4 -> preds 1,1,0); FPR 1/2 (y=0 at 1,2 -> 0,1)
    # group 1: positive rate 3/5; TPR 1/2 (y=1 at 5,7 -> 1,0); FPR 2/3 (y=0 at 6,8,9 -> 0,1,1)
    r = group_rates(preds, groups, labels)
    torch.testing.assert_close(r["positive_rate"], torch.tensor([0.6, 0.6], dtype=torch.float64))
    torch.testing.assert_close(r["tpr"], torch.tensor([2 / 3, 1 / 2], dtype=torch.float64))
    torch.testing.assert_close(r["fpr"], torch.tensor([1 / 2, 2 / 3], dtype=torch.float64))
    assert demographic_parity_difference(preds, groups) == pytest.approx(0.0)
    assert equalized_odds_difference(preds, labels, groups) == pytest.approx(1 / 6)
    # torchmetrics reports ratios min/max of the same rates
    dp = demographic_parity(preds, groups)
    assert float(next(iter(dp.values()))) == pytest.approx(1.0)
    eo = equal_opportunity(preds, labels, groups)
    assert float(next(iter(eo.values()))) == pytest.approx(float(r["tpr"].min() / r["tpr"].max()))
    g2 = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    p2 = torch.tensor([1, 1, 1, 1, 0, 1, 0, 0, 0, 0])
    assert demographic_parity_difference(p2, g2.float()) == pytest.approx(0.8 - 0.2)
    rates = group_rates(p2, g2)["positive_rate"]
    assert float(next(iter(demographic_parity(p2, g2).values()))) == pytest.approx(float(rates.min() / rates.max()))
    # probabilities are thresholded at 0.5
    assert demographic_parity_difference(torch.tensor([0.9, 0.2, 0.6, 0.7]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.5)


def test_group_metrics_bad_inputs():
    with pytest.raises(ValueError, match="0/1 decisions"):
        demographic_parity_difference(torch.tensor([0, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        demographic_parity_difference(torch.tensor([0.5, 1.5]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="`groups`"):
        demographic_parity_difference(torch.tensor([0, 1]), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="integral group ids"):
        demographic_parity_difference(torch.tensor([0, 1]), torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        counterfactual_fairness_gap(nn.Linear(2, 2), torch.zeros(3, 2), lambda x: torch.zeros(4, 2))
    with pytest.raises(TypeError, match="lambda x: x_cf"):
        counterfactual_fairness_gap(nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, 2))
    assert math.isnan(demographic_parity_difference(torch.tensor([0, 1]), torch.tensor([1, 1])))  # one group


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


def _reference_carriers(model, x, x_cf, layer_idx, target):
    """Brute force: run the Sequential by hand, patch one unit of one sample at a time."""
    prefix, suffix = model[: layer_idx + 1], model[layer_idx + 1 :]
    with torch.no_grad():
        h, h_cf = prefix(x), prefix(x_cf)
        f0 = suffix(h).softmax(1)[torch.arange(len(x)), target]
        out = torch.zeros(len(x), h.shape[1])
        for i in range(len(x)):
            for u in range(h.shape[1]):
                hp = h[i : i + 1].clone()
                hp[0, u] = h_cf[i, u]
                out[i, u] = suffix(hp).softmax(1)[0, target[i]] - f0[i]
    return out


def test_carrier_unit_effects_match_brute_force_and_fallback():
    model = _mlp()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 4, generator=g)
    x_cf = x.clone()
    x_cf[:, 0] += 1.5
    target = model(x).argmax(1)
    ref = _reference_carriers(model, x, x_cf, 1, target)
    fast = carrier_unit_effects(model, x, lambda t: t + torch.tensor([1.5, 0, 0, 0]), "1")
    slow = carrier_unit_effects(model, x, lambda t: x_cf, "1", use_suffix=False, max_batch_size=5)
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(slow, ref, atol=1e-6, rtol=1e-5)
    assert fast.abs().sum() > 0
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_patching_every_unit_of_a_crossing_layer_recovers_the_total_change():
    model = nn.Sequential(nn.Linear(2, 1), nn.Identity(), nn.Linear(1, 2))  # one unit carries everything
    x, x_cf = torch.randn(5, 2), torch.randn(5, 2)
    eff = carrier_unit_effects(model, x, lambda t: x_cf, "1", target=1)
    gap = counterfactual_fairness_gap(model, x, lambda t: x_cf, target=1)
    torch.testing.assert_close(eff[:, 0], gap["delta"], atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="Unknown module name"):
        carrier_unit_effects(model, x, lambda t: x_cf, "nope")
