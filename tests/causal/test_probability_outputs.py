"""A model that ends in ``nn.Softmax`` returns probabilities; every measure that applies a softmax
to logits refuses it (the softmax of probabilities flattens them: figures silently too small) and
names the exact fix, ``output=lambda out: out.log()``, which gives the logits model's figures."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines.metrics import perturbation_curve
from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.sensitivity.samplers import class_probability
from lightning_causal.repair import BackdoorSuppressionTerm, CounterfactualFairnessTerm

LOG = {"output": lambda out: out.log()}


def _models():
    torch.manual_seed(0)
    logits = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    return logits, nn.Sequential(logits, nn.Softmax(dim=1)).eval()


def _x():
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    x[:, 0] = (x[:, 0] > 0).float()  # a binary sensitive column
    return x


def test_the_fairness_gap_refuses_probabilities_and_log_gives_the_logits_figures():
    logits, probs = _models()
    flip = AttributeFlip(0, (0.0, 1.0))
    with pytest.raises(ValueError, match=r"returns probabilities already.*`output=lambda out: out.log\(\)`"):
        counterfactual_fairness_gap(probs, _x(), flip)
    want, got = counterfactual_fairness_gap(logits, _x(), flip), counterfactual_fairness_gap(probs, _x(), flip, **LOG)
    assert got["mean_abs"] == pytest.approx(want["mean_abs"], abs=1e-6) and want["mean_abs"] > 0


def test_the_sobol_function_refuses_probabilities_unless_asked_for_the_raw_output():
    logits, probs = _models()
    with pytest.raises(ValueError, match="Sobol' analysis"):
        class_probability(probs, target=1)(_x())
    torch.testing.assert_close(class_probability(probs, target=1, **LOG)(_x()), class_probability(logits, target=1)(_x()))
    torch.testing.assert_close(class_probability(probs, target=1, probability=False)(_x()), probs(_x())[:, 1])


def test_perturbation_curves_refuse_probabilities_under_softmax_scores():
    _, probs = _models()
    x, mask, scores = _x(), torch.arange(4).view(1, 4), torch.rand(16, 4)
    with pytest.raises(ValueError, match="score='auto'"):
        perturbation_curve(probs, x, mask, scores)
    raw = perturbation_curve(probs, x, mask, scores, score="raw")
    logged = perturbation_curve(probs, x, mask, scores, **LOG)
    torch.testing.assert_close(raw, logged)  # the probability either way


def test_repair_terms_refuse_probabilities():
    logits, probs = _models()
    x = _x()
    term = CounterfactualFairnessTerm(AttributeFlip(0, (0.0, 1.0)))
    with pytest.raises(ValueError, match="CounterfactualFairnessTerm"):
        term.loss(probs, x, None)
    fixed = CounterfactualFairnessTerm(AttributeFlip(0, (0.0, 1.0)), **LOG)
    assert float(fixed.loss(probs, x, None)) == pytest.approx(float(term.loss(logits, x, None)), abs=1e-6)
    images = torch.rand(8, 1, 4, 4)
    cnn = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.Softmax(dim=1)).eval()
    with pytest.raises(ValueError, match="BackdoorSuppressionTerm"):
        BackdoorSuppressionTerm(reverse_options={"steps": 2}).setup(cnn, images)


def test_repair_terms_check_the_outputs_once_not_every_training_step(monkeypatch):
    import lightning_causal.repair.base as base

    calls = []
    monkeypatch.setattr(base, "check_logits", lambda out, caller: calls.append(caller) or out)
    logits, _ = _models()
    term = CounterfactualFairnessTerm(AttributeFlip(0, (0.0, 1.0)))
    for _ in range(3):
        term.loss(logits, _x(), None)
    backdoor = BackdoorSuppressionTerm(Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0]), target=1), augment=None)
    linear = nn.Linear(2, 2)
    backdoor.setup(linear)
    for _ in range(3):
        backdoor.loss(linear, torch.rand(4, 2), torch.zeros(4, dtype=torch.long))
    assert calls == ["CounterfactualFairnessTerm", "BackdoorSuppressionTerm"]
