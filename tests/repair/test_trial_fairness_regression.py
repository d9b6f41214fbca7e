"""CounterfactualFairnessTerm on a regression model: the probability distances saturate, so the term
warns and points to distance='logit', which penalises the change of the output itself."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.repair.fairness import CounterfactualFairnessTerm


def _regression():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 2, (32,), generator=g).float()
    x = torch.stack([a, torch.randn(32, generator=g)], 1)
    model = nn.Linear(2, 1)  # y = 10 + 3 a + x1: the flip moves the output by exactly 3
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 1.0]]))
        model.bias.fill_(10.0)
    return model, x, model(x)[:, 0].detach() + 0.1 * torch.randn(32, generator=g)


@pytest.mark.parametrize("distance", ["abs_prob", "sym_kl"])
def test_probability_distances_warn_on_regression_labels(distance):
    model, x, y = _regression()
    term = CounterfactualFairnessTerm(AttributeFlip(0), distance=distance)
    with pytest.warns(UserWarning, match=r"regression target.*distance='logit'"):
        value = term.loss(model, x, y)
    assert float(value) < 1e-3  # saturated: the 3.0 change of the output is invisible here


def test_logit_distance_is_the_output_change_and_does_not_warn(recwarn):
    model, x, y = _regression()
    value = CounterfactualFairnessTerm(AttributeFlip(0), distance="logit").loss(model, x, y)
    assert float(value) == pytest.approx(3.0, rel=1e-5)  # |f(x) - f(x_cf)| = |w_a| by hand
    soft = CounterfactualFairnessTerm(AttributeFlip(0)).loss(model, x, (x[:, 1] > 0).float() * 0.9 + 0.05)  # smoothed BCE targets
    assert float(soft) >= 0
    assert not [w for w in recwarn if "regression" in str(w.message)]
