"""A Captum user's method options and targets (newuser8 trial), each checked against Captum called directly.

Bad option values reached Captum unchecked: ``n_steps=0`` and ``nt_type="bogus"`` failed on Captum's
``assert`` (gone under ``python -O``), ``stdevs=-1`` and ``n_samples=-2`` on torch errors naming no option,
and ``ShapleyValueSampling`` with ``n_samples=0`` returned NaN attributions silently. A list of per-sample
targets, as Captum takes it, was refused with a message about tuples of dense outputs.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients, LayerConductance, NoiseTunnel, Saliency
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.baselines.captum_methods import attribute, layer_attribute
from lightning_causal.causal.effects.input_effects import input_effects


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double().eval()


def _inputs() -> torch.Tensor:
    return torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    ("method", "options", "shown"),
    [
        ("IntegratedGradients", {"n_steps": 0}, "`n_steps` of method `IntegratedGradients` to be a positive int but got 0"),
        ("IntegratedGradients", {"method": "simpson"}, "`method` of method `IntegratedGradients` to be one of .*'gausslegendre'.* but got 'simpson'"),
        ("IntegratedGradients", {"internal_batch_size": 0}, "`internal_batch_size` of method `IntegratedGradients` to be None or a positive int but got 0"),
        ("NoiseTunnel(Saliency)", {"nt_type": "smoothgrad_sqr"}, r"`nt_type` of method `NoiseTunnel\(Saliency\)` to be one of \['smoothgrad', 'smoothgrad_sq', 'vargrad'\] but got 'smoothgrad_sqr'"),
        ("NoiseTunnel(Saliency)", {"stdevs": -1.0}, r"`stdevs` of method `NoiseTunnel\(Saliency\)` to be None or a non-negative number but got -1.0"),
        ("NoiseTunnel(Saliency)", {"nt_samples": 0}, r"`nt_samples` of method `NoiseTunnel\(Saliency\)` to be a positive int but got 0"),
        ("GradientShap", {"n_samples": -2}, "`n_samples` of method `GradientShap` to be a positive int but got -2"),
        ("ShapleyValueSampling", {"n_samples": 0}, "`n_samples` of method `ShapleyValueSampling` to be a positive int but got 0"),
        ("FeatureAblation", {"perturbations_per_eval": 0}, "`perturbations_per_eval` of method `FeatureAblation` to be None or a positive int but got 0"),
    ],
)
def test_bad_option_values_are_refused_naming_option_method_and_value(method: str, options: dict, shown: str) -> None:
    model, x = _model(), _inputs()
    with pytest.raises(ValueError, match="Expected option " + shown):
        attribute(model, x, (method, options), 0)
    with pytest.raises(ValueError, match="Expected option " + shown):  # at construction, not at the callback's first audit
        CaptumBaseline(((method, options),))


def test_abs_must_be_a_bool_and_layer_options_are_checked_too() -> None:
    model, x = _model(), _inputs()
    with pytest.raises(TypeError, match="Expected option `abs` of method `Saliency` to be bool but got str"):
        attribute(model, x, ("Saliency", {"abs": "no"}), 0)
    with pytest.raises(ValueError, match="Expected option `n_steps` of method `LayerConductance` to be a positive int but got 0"):
        layer_attribute(model, x, "1", "LayerConductance", target=0, options={"n_steps": 0})


def test_valid_non_default_options_still_equal_captum() -> None:
    model, x = _model(), _inputs()
    ours = attribute(model, x, ("IntegratedGradients", {"n_steps": 7, "method": "riemann_trapezoid"}), 2)
    ref = IntegratedGradients(model).attribute(x, baselines=0.0, target=2, n_steps=7, method="riemann_trapezoid")
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    ours = attribute(model, x, ("NoiseTunnel(Saliency)", {"nt_type": "smoothgrad_sq", "nt_samples": 3, "stdevs": 0.3}), 1, generator=5)
    torch.manual_seed(5)  # the private seed the wrapper runs Captum's draws from
    ref = NoiseTunnel(Saliency(model)).attribute(x, target=1, nt_type="smoothgrad_sq", nt_samples=3, stdevs=0.3, abs=True)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    ours = layer_attribute(model, x, "1", "LayerConductance", target=1, options={"n_steps": 5})
    ref = LayerConductance(model, model[1]).attribute(x, baselines=0.0, target=1, n_steps=5)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_a_list_of_per_sample_targets_is_taken_as_captum_takes_it() -> None:
    model, x = _model(), _inputs()
    targets = [0, 2, 1, 1, 0]
    ref = IntegratedGradients(model).attribute(x, baselines=0.0, target=targets, n_steps=16, method="gausslegendre")
    torch.testing.assert_close(attribute(model, x, "IntegratedGradients", targets), ref, rtol=0, atol=1e-12)
    brute = torch.stack([model(x)[n, t] - model(x[n].clone().index_fill_(0, torch.tensor([g]), 0.0).unsqueeze(0))[0, t]
                         for n, t in enumerate(targets) for g in range(6)]).view(5, 6).detach()
    torch.testing.assert_close(input_effects(model, x, target=targets), brute, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="to have 1 or 5 entries but got 3"):
        attribute(model, x, "Saliency", [0, 1, 2])
    with pytest.raises(TypeError, match=r"a tuple such as Captum's `\(class, i, j\)`"):
        attribute(model, x, "Saliency", (0, 1))  # Captum's tuple is one index of a dense output, not per-sample classes


def test_layer_conductance_takes_captums_approximation_method() -> None:
    model, x = _model(), _inputs()  # Captum's LayerConductance takes method=; it was refused as an unknown option
    ours = layer_attribute(model, x, "1", "LayerConductance", target=0, options={"n_steps": 6, "method": "riemann_trapezoid"})
    ref = LayerConductance(model, model[1]).attribute(x, baselines=0.0, target=0, n_steps=6, method="riemann_trapezoid")
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="Expected option `method` of method `LayerConductance` to be one of"):
        layer_attribute(model, x, "1", "LayerConductance", target=0, options={"method": "simpson"})


def test_the_from_captum_example_of_methods_md_gives_captums_tensor() -> None:
    model, x = _model(), _inputs()  # docs/methods.md, "From Captum": the same call, the same numbers
    t, b = torch.tensor([0, 1, 2, 0, 1]), x.mean(0, keepdim=True)
    ours = attribute(model, x, ("IntegratedGradients", {"n_steps": 50}), target=t, baselines=b)
    theirs = IntegratedGradients(model).attribute(x, baselines=b, target=t, n_steps=50)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_method_options_keyed_by_the_name_the_methods_were_given_with() -> None:
    # methods=("NoiseTunnel(IntegratedGradients)",) with method_options keyed the same way was refused:
    # "Expected keys of `method_options` among ['NoiseTunnel-IntegratedGradients']"
    audit = CaptumBaseline(("NoiseTunnel(IntegratedGradients)",), method_options={"NoiseTunnel(IntegratedGradients)": {"nt_samples": 3}})
    assert audit.specs[0].label == "NoiseTunnel-IntegratedGradients" and audit.specs[0].options["nt_samples"] == 3
    same = CaptumBaseline(("NoiseTunnel(IntegratedGradients)",), method_options={"NoiseTunnel-IntegratedGradients": {"nt_samples": 3}})
    assert same.specs == audit.specs
    with pytest.raises(ValueError, match="'NoiseTunnel-Saliency' twice"):
        CaptumBaseline(("NoiseTunnel(Saliency)",), method_options={"NoiseTunnel(Saliency)": {}, "NoiseTunnel-Saliency": {}})



def _captum_method(name: str, x: torch.Tensor, mask: torch.Tensor) -> tuple[type, dict]:
    """Captum's class of ``name`` and the options ``attribute`` documents as its defaults."""
    import captum.attr as CA

    distribution = torch.cat([torch.zeros(1, x.shape[1], dtype=x.dtype), x])  # GradientShap: the baseline and the probe
    return {
        "IntegratedGradients": (CA.IntegratedGradients, {"baselines": 0.0, "n_steps": 16}),
        "Saliency": (CA.Saliency, {}),
        "DeepLift": (CA.DeepLift, {"baselines": 0.0}),
        "GradientShap": (CA.GradientShap, {"baselines": distribution, "n_samples": 16}),
        "InputXGradient": (CA.InputXGradient, {}),
        "GuidedBackprop": (CA.GuidedBackprop, {}),
        "Deconvolution": (CA.Deconvolution, {}),
        "FeatureAblation": (CA.FeatureAblation, {"baselines": 0.0, "feature_mask": mask}),
        "ShapleyValueSampling": (CA.ShapleyValueSampling, {"baselines": 0.0, "feature_mask": mask, "n_samples": 8}),
    }[name]


@pytest.mark.parametrize("name", ["IntegratedGradients", "Saliency", "DeepLift", "GradientShap", "InputXGradient",
                                  "GuidedBackprop", "Deconvolution", "FeatureAblation", "ShapleyValueSampling"])
def test_every_input_method_and_its_tunnel_equal_captum_called_directly(name: str) -> None:
    """methods.md ('From Captum'): the same call gives Captum's numbers, randomised methods after seeding torch,
    NumPy and random with ``generator``; the documented defaults are the only differences."""
    import random

    import numpy as np
    from captum.attr import NoiseTunnel

    model, x, mask = _model(), _inputs(), torch.tensor([[0, 0, 1, 2, 2, 3]])
    cls, options = _captum_method(name, x, mask)
    tol = 1e-6 if name == "ShapleyValueSampling" else 1e-12  # Captum sums its terms in float32 (and returns float32)

    def seeded() -> None:
        torch.manual_seed(3), np.random.seed(3), random.seed(3)

    ours = attribute(model, x, name, 1, feature_mask=mask, generator=3)
    seeded()
    torch.testing.assert_close(ours, cls(model).attribute(x, target=1, **options).to(x.dtype), rtol=0, atol=tol)
    ours = attribute(model, x, (f"NoiseTunnel({name})", {"nt_samples": 2, "stdevs": 0.1}), 1, feature_mask=mask, generator=3)
    seeded()
    ref = NoiseTunnel(cls(model)).attribute(x, target=1, nt_samples=2, stdevs=0.1,
                                            draw_baseline_from_distrib=name == "GradientShap", **options)
    torch.testing.assert_close(ours, ref.to(x.dtype), rtol=0, atol=tol)
