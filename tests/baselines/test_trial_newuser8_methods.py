"""The Captum methods a Captum user tries next (newuser8 trial), each against Captum called directly.

``GuidedBackprop`` and ``Deconvolution`` were refused, and so were ``LayerIntegratedGradients`` and
``LayerGradientXActivation`` on a hidden layer (``layer_attribute`` took LayerConductance and LayerActivation
only); the methods not taken (Occlusion, KernelShap, NeuronConductance, ...) were refused with the list of
names alone, saying neither why nor what to use instead.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from captum.attr import (
    Deconvolution,
    FeatureAblation,
    GuidedBackprop,
    IntegratedGradients,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from scipy.stats import spearmanr
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import CompareSettings, Probe
from lightning_causal.baselines.captum_methods import attribute, layer_attribute
from lightning_causal.causal.effects.unit_effects import unit_effects


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    ).double().eval()


def _images() -> torch.Tensor:
    return torch.randn(5, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", ["GuidedBackprop", "Deconvolution"])
def test_relu_rule_methods_equal_captum_and_differ_from_the_gradient(name: str) -> None:
    model, x = _cnn(), _images()
    cls = {"GuidedBackprop": GuidedBackprop, "Deconvolution": Deconvolution}[name]
    ref = cls(model).attribute(x, target=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = attribute(model, x, name, 2)
    assert not [w for w in caught if "nn.ReLU modules only" in str(w.message)]  # the model holds nn.ReLU modules
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    assert (ref - Saliency(model).attribute(x, target=2, abs=False)).abs().max() > 1e-3  # the ReLU rule changed it
    ours = attribute(model, x, (f"NoiseTunnel({name})", {"nt_samples": 3, "stdevs": 0.2}), 1, generator=4)
    torch.manual_seed(4)
    ref = NoiseTunnel(cls(model)).attribute(x, target=1, nt_samples=3, stdevs=0.2)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_guided_backprop_warns_on_a_model_without_relu_modules() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(5, 8), nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.relu(self.a(x)))

    model, x = Functional().eval(), torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="GuidedBackprop overrides the backward pass of nn.ReLU modules only and Functional holds none"):
        ours = attribute(model, x, "GuidedBackprop", 1)
    torch.testing.assert_close(ours, attribute(model, x, ("Saliency", {"abs": False}), 1), rtol=0, atol=0)


def test_hidden_layer_integrated_gradients_and_gradient_x_activation_equal_captum() -> None:
    model, x = _cnn(), _images()
    ours = layer_attribute(model, x, "2", "LayerIntegratedGradients", target=2)
    ref = LayerIntegratedGradients(model, model[2]).attribute(x, baselines=0.0, target=2, n_steps=16, method="gausslegendre")
    torch.testing.assert_close(ours, ref.sum((2, 3)), rtol=0, atol=1e-12)  # summed over each channel's positions
    ours = layer_attribute(model, x, "2", "LayerGradientXActivation", target=2)
    ref = LayerGradientXActivation(model, model[2]).attribute(x, target=2)
    torch.testing.assert_close(ours, ref.sum((2, 3)), rtol=0, atol=1e-12)
    lig = layer_attribute(model, x, "2", "LayerIntegratedGradients", target=2, options={"n_steps": 64})
    with torch.no_grad():  # completeness in the layer: the units sum to f_t(x) - f_t(baseline)
        gap = model(x)[:, 2] - model(torch.zeros_like(x))[:, 2]
    torch.testing.assert_close(lig.sum(1), gap, rtol=0, atol=1e-2 * float(gap.abs().max()))  # quadrature error of ReLUs


def test_captum_baseline_sets_hidden_layer_integrated_gradients_beside_the_unit_effects() -> None:
    model, x = _cnn(), _images()
    result = CaptumBaseline(("Saliency",), layers=["2"], top_k=2,
                            settings=CompareSettings(layer_method="LayerIntegratedGradients")).run(model, Probe(x))
    target = model(x).argmax(1)
    causal = unit_effects(model, x, "2", target=target).abs()
    lig = layer_attribute(model, x, "2", "LayerIntegratedGradients", target=target).abs()
    rho = sum(spearmanr(causal[n], lig[n]).statistic for n in range(5)) / 5
    assert result.scalars["compare/LayerIntegratedGradients-2/spearman"] == pytest.approx(rho, abs=1e-6)
    with pytest.raises(ValueError, match="`layer_method` to be one of .*'LayerIntegratedGradients'.* but got 'NeuronConductance'"):
        CompareSettings(layer_method="NeuronConductance")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Occlusion", "FeatureAblation of patches"),
        ("KernelShap", "scikit-learn.*ShapleyValueSampling"),
        ("NoiseTunnel(Lime)", "Captum fits it with scikit-learn"),
        ("DeepLiftShap", "N x B rows.*GradientShap"),
        ("NeuronConductance", "layer_attribute / CaptumBaseline\\(layers=\\[...\\]\\)"),
        ("LayerConductance", "a hidden layer's method: layer_attribute"),
    ],
)
def test_captum_methods_not_taken_say_why_and_what_to_use(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"is not taken here; .*{why}"):
        attribute(_cnn(), _images(), name, 0)
    with pytest.raises(ValueError, match=f"is not taken here; .*{why}"):
        CaptumBaseline((name,))


def test_occlusion_of_one_stride_is_feature_ablation_of_patches_as_the_hint_says() -> None:
    model, x = _cnn(), _images()
    patches = (torch.arange(8).view(8, 1) // 2 * 4 + torch.arange(8).view(1, 8) // 2).view(1, 1, 8, 8)
    occlusion = Occlusion(model).attribute(x, sliding_window_shapes=(1, 2, 2), strides=(1, 2, 2), baselines=0.0, target=1)
    ours = attribute(model, x, "FeatureAblation", 1, feature_mask=patches)
    torch.testing.assert_close(ours, FeatureAblation(model).attribute(x, baselines=0.0, target=1, feature_mask=patches), rtol=0, atol=1e-12)
    # Captum's Occlusion returns float32 on a float64 model: the same numbers to float32 rounding
    torch.testing.assert_close(ours, occlusion.double(), rtol=0, atol=1e-6)


def test_an_input_layer_method_without_input_layer_points_to_the_hidden_layer_setting() -> None:
    # CaptumBaseline(("LayerIntegratedGradients",)) said only "Expected argument `input_layer` (e.g. the word
    # embeddings)": a Captum user's LayerIntegratedGradients of a hidden layer is layers= with layer_method=
    with pytest.raises(ValueError, match=r"for the units of a hidden layer pass layers=\[...\] and "
                                         r"settings=CompareSettings\(layer_method='LayerIntegratedGradients'\)"):
        CaptumBaseline(("Saliency", "LayerIntegratedGradients"))
    with pytest.raises(ValueError, match=r"layer_method='LayerConductance'\) \(one of \["):
        CaptumBaseline(("LayerFeatureAblation",))


def test_captum_classes_stand_for_their_names_and_instances_are_refused_saying_why() -> None:
    # a Captum user passes the classes they import; both were refused as "not a name or a (name, options) pair"
    audit = CaptumBaseline((IntegratedGradients, (Saliency, {"abs": False})))
    assert audit.specs == CaptumBaseline(("IntegratedGradients", ("Saliency", {"abs": False}))).specs
    model, x = _cnn(), _images()
    torch.testing.assert_close(attribute(model, x, GuidedBackprop, 0), attribute(model, x, "GuidedBackprop", 0), rtol=0, atol=0)
    with pytest.raises(TypeError, match="an object of class IntegratedGradients; pass its name, 'IntegratedGradients'"):
        CaptumBaseline((IntegratedGradients(model),))
    with pytest.raises(ValueError, match="Occlusion is not taken here"):
        attribute(model, x, Occlusion, 0)
