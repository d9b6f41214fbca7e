"""Gradient methods on a model whose output holds no autograd graph back to its input (a deployed model with a
hard threshold, a nearest-prototype head, a forward under torch.no_grad()): Captum failed inside its backward
pass with torch's "element 0 of tensors does not require grad and does not have a grad_fn", naming neither the
method nor the cause. They are refused naming both and what works; FeatureAblation still runs and gives the
hand-computed interventional values; a model whose gradient is exactly 0 (torch.round) keeps its zero maps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.baselines.captum_methods import attribute, layer_attribute
from lightning_causal.baselines.input_layer_methods import input_layer_attribute

X = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


class Threshold(nn.Module):
    """``out = W2 (W1 x > 0) + b2``: piecewise constant; no autograd graph reaches ``x``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = nn.Linear(4, 6).double(), nn.Linear(6, 2).double()

    def forward(self, x):
        return self.l2((self.l1(x) > 0).to(x.dtype))


class Prototype(nn.Module):
    """The one-hot of the nearest of two prototypes (argmin of distances), scaled."""

    def __init__(self) -> None:
        super().__init__()
        self.protos = nn.Parameter(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]], dtype=torch.float64))

    def forward(self, x):
        return 3 * nn.functional.one_hot(torch.cdist(x, self.protos).argmin(1), 2).to(x.dtype)


class NoGradForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(4, 2).double()

    def forward(self, x):
        with torch.no_grad():
            return self.l1(x)


@pytest.mark.parametrize("method", ["Saliency", "IntegratedGradients", "DeepLift", "NoiseTunnel(Saliency)"])
@pytest.mark.parametrize("model", [Threshold, Prototype, NoGradForward])
def test_a_gradient_method_is_refused_naming_it_the_model_and_what_works(model, method):
    label = method.replace("(", "-").rstrip(")") if "(" in method else method
    with pytest.raises(ValueError, match=rf"Captum's {label} takes the gradient of the output of {model.__name__} .*"
                                         r"no gradient reaches the input.*FeatureAblation and ShapleyValueSampling"):
        attribute(model().eval(), X, method, target=0)


def test_feature_ablation_of_the_threshold_model_equals_the_interventions_by_hand():
    model = Threshold().eval()
    got = attribute(model, X, "FeatureAblation", target=1)
    with torch.no_grad():
        clean = model(X)[:, 1]
        for j in range(4):
            z = X.clone()
            z[:, j] = 0
            torch.testing.assert_close(got[:, j], clean - model(z)[:, 1], rtol=0, atol=1e-12)


def test_a_model_of_zero_gradient_keeps_its_zero_maps():
    class Rounded(nn.Module):
        def forward(self, x):
            return torch.round(x[:, :2] * 3)

    assert torch.equal(attribute(Rounded(), X, "Saliency", target=0), torch.zeros_like(X))


@pytest.mark.parametrize("method", ["LayerConductance", "LayerIntegratedGradients", "LayerGradientXActivation"])
def test_a_layer_method_is_refused_naming_it_the_layer_and_what_works(method):
    with pytest.raises(ValueError, match=rf"Captum's {method} .* of Threshold with respect to layer 'l1' .* none reaches it"
                                         r".*unit_effects \(method='exact'\)"):
        layer_attribute(Threshold().eval(), X, "l1", method, target=0)
    # the activations need no gradient: LayerActivation still runs
    assert layer_attribute(Threshold().eval(), X, "l1", "LayerActivation").shape == (5, 6)


class ThresholdBag(nn.Module):
    """Token ids -> embeddings -> their mean thresholded: no gradient reaches the embeddings."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.out = nn.Embedding(20, 8), nn.Linear(8, 3)

    def forward(self, ids):
        return self.out((self.emb(ids).mean(1) > 0).float())


def test_an_input_layer_method_on_token_ids_is_refused_and_feature_ablation_runs():
    ids = torch.randint(1, 20, (4, 6), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"Captum's LayerIntegratedGradients .* layer 'emb' .* none reaches it.*LayerFeatureAblation"):
        input_layer_attribute(ThresholdBag().eval(), ids, "emb", "LayerIntegratedGradients", target=0, baseline=0)
    assert input_layer_attribute(ThresholdBag().eval(), ids, "emb", "LayerFeatureAblation", target=0, baseline=0).shape == (4, 6)
