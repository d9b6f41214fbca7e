"""Validation sweep (newuser20): the Captum baselines and metrics fed a user's usual mistakes.

attribute(baselines=nan) answered NaN attributions everywhere; attribute(feature_mask=<floats>)
failed inside Captum ('The size of tensor a (6) must match ...'); perturbation_curve(baseline=nan)
answered curves NaN after their start; layer_attribute(baselines=nan) and infidelity(baseline=nan)
answered NaN everywhere, stability(3, ...) failed with "'int' object is not callable"; sensitivity(radius=-1 or nan) failed inside uniform_,
sensitivity(3, ...) with "'int' object is not callable", and a target of 3 rows for 6 inputs ran."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import (
    attribute,
    infidelity,
    layer_attribute,
    perturbation_curve,
    sensitivity,
    stability,
)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


X = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([0, 0, 1, 1])
Y = torch.tensor([0, 1, 2, 0, 1, 2])


def test_a_finite_call_still_runs():
    model = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    ig = attribute(model, torch.ones(1, 4), "IntegratedGradients", target=0, baselines=0.0)
    assert torch.allclose(ig, torch.tensor([[1.0, 2.0, 3.0, 4.0]]), atol=1e-4)  # IG of a linear model: w * (x - 0)
    assert sensitivity(lambda x, target: x * 2, torch.ones(2, 3), torch.zeros(2, dtype=torch.long), 0.0).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("call, error, message", [
    (lambda: attribute(_mlp(), X, "IntegratedGradients", target=0, baselines=float("nan")), ValueError,
     r"`baselines` to be finite but got nan"),
    (lambda: attribute(_mlp(), X, "FeatureAblation", target=0, feature_mask=MASK.float()), TypeError,
     r"`feature_mask` to be an integer tensor"),
    (lambda: attribute(_mlp(), X, "FeatureAblation", target=0, feature_mask=torch.tensor([0, 0, 1])), ValueError,
     r"`feature_mask` broadcastable to \[6, 4\] but got \[1, 3\]"),
    (lambda: perturbation_curve(_mlp(), X, MASK, torch.randn(6, 2), baseline=float("nan")), ValueError,
     r"`baseline` to be finite but got nan"),
    (lambda: layer_attribute(_mlp(), X, "1", target=0, baselines=float("nan")), ValueError, r"`baselines` to be finite but got nan"),
    (lambda: infidelity(_mlp(), X, torch.randn(6, 2), MASK, target=0, baseline=torch.tensor([0.0, float("inf"), 0.0, 0.0])), ValueError,
     r"`baseline` to be finite but got tensor"),
    (lambda: stability(3, X, 0.1), TypeError, r"`explain` to be a callable x -> scores \[N, G\] but got 3"),
    (lambda: sensitivity(lambda x, t: x, X, Y, -1.0), ValueError, r"`radius` to be a non-negative number but got -1.0"),
    (lambda: sensitivity(lambda x, t: x, X, Y, float("nan")), ValueError, r"`radius` .* got nan"),
    (lambda: sensitivity(3, X, Y, 0.1), TypeError, r"`explain` to be a callable \(x, target\) -> scores but got 3"),
    (lambda: sensitivity(lambda x, t: x, X, Y[:3], 0.1), ValueError, r"`target` to be class indices \[6\] .* but got \[3\]"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_inputs_of_another_width_name_the_argument():
    """attribute(model, x of 5 features) for a model of 4 stopped with torch's 'mat1 and mat2 shapes cannot be
    multiplied (6x5 and 4x8)' alone (its first pass is Captum's, not the estimators' Forward)."""
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 .*\. Argument `inputs` has 5 features per sample \(its last dimension\) "
                       r"but the model's first layer '0' \(Linear\) takes 4"):
        attribute(_mlp(), torch.randn(6, 5), "Saliency", target=0)
