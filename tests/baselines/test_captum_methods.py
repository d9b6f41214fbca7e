"""Captum method registry: correctness on hand-built models, and no trace left on model or RNG."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from lightning_causal.baselines.captum_methods import (
    LAYER_METHOD_NAMES,
    METHOD_NAMES,
    attribute,
    deterministic_warn_only,
    layer_attribute,
    resolve_method,
)
from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.groups import aggregate_to_groups, patch_mask
from lightning_causal.causal.engine.interventions import capture
from tests.helpers.models import MLP, DigitsCNN, all_hook_counts, hand_linear, seeded

ALL = list(METHOD_NAMES) + [f"NoiseTunnel({m})" for m in METHOD_NAMES]
FAST = {"n_steps": 4}  # keep IG / GradientShap / tunnels cheap in the sweep


def _options(name: str) -> dict:
    inner = name.removeprefix("NoiseTunnel(").rstrip(")")
    opts = dict(FAST) if inner == "IntegratedGradients" else {}
    if inner in ("GradientShap", "ShapleyValueSampling"):
        opts["n_samples"] = 2
    if name.startswith("NoiseTunnel"):
        opts["nt_samples"] = 2
    return opts


def rng_states() -> tuple:
    """The global torch, NumPy and ``random`` states (Captum draws from all three)."""
    return torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def same_rng(a: tuple, b: tuple) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def _models():
    return {
        "mlp": (seeded(MLP(6, (8,), 3), 0), torch.randn(4, 6, generator=torch.Generator().manual_seed(1)), torch.tensor([[0, 0, 1, 1, 2, 2]])),
        "cnn": (seeded(DigitsCNN((2, 4), 8), 1), torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2)), patch_mask((1, 8, 8), 4)),
    }


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("method", ALL)
def test_every_method_runs_with_per_sample_targets_and_leaves_no_trace(kind, method):
    model, x, mask = _models()[kind]
    model.train()
    model.net[0].eval() if kind == "mlp" else model.conv1.eval()  # a mixed mode must come back as it was
    modes = [m.training for m in model.modules()]
    sentinel = {name: torch.full_like(p, 7.0) for name, p in model.named_parameters()}
    for name, p in model.named_parameters():
        p.grad = sentinel[name].clone()
    params = list(model.parameters())
    params[0].requires_grad_(False)  # a frozen parameter stays frozen
    hooks, rng = all_hook_counts(model), rng_states()
    target = torch.tensor([0, 1, 2, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum's DeepLift notes about non-linear hooks
        out = attribute(model, x, method, target, feature_mask=mask, generator=3, options=_options(method))
    assert out.shape == x.shape and torch.isfinite(out).all() and out.abs().sum() > 0
    assert not out.requires_grad
    assert same_rng(rng_states(), rng), "global RNG consumed"
    assert all_hook_counts(model) == hooks, "hooks left behind"
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in params] == [False] + [True] * (len(params) - 1)
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, sentinel[name]), f"{name}.grad changed"


@pytest.mark.parametrize("method", ["DeepLift", "NoiseTunnel(DeepLift)"])
def test_deeplift_on_a_cnn_under_deterministic_algorithms_runs_and_restores_the_setting(method):
    # Trainer(deterministic=True) turns this on; Captum's max-pool rule calls max_unpool2d, which
    # has no deterministic implementation and would raise in the middle of training
    model, x, _ = _models()["cnn"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        free = attribute(model, x, method, 1, generator=0, options=_options(method))
        torch.use_deterministic_algorithms(True)
        try:
            strict = attribute(model, x, method, 1, generator=0, options=_options(method))
            assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
            with pytest.raises(RuntimeError, match="deterministic"):  # the op itself still raises outside
                torch.nn.functional.max_unpool2d(*torch.nn.functional.max_pool2d(x, 2, return_indices=True), 2)
        finally:
            torch.use_deterministic_algorithms(False)
    assert torch.equal(free, strict)


def test_deterministic_warn_only_restores_on_exceptions_and_leaves_other_settings_alone():
    torch.use_deterministic_algorithms(True)
    try:
        with pytest.raises(ValueError, match="boom"), deterministic_warn_only():
            assert torch.is_deterministic_algorithms_warn_only_enabled()
            raise ValueError("boom")
        assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        with deterministic_warn_only():
            pass
        assert torch.is_deterministic_algorithms_warn_only_enabled()  # a warn-only setting stays warn-only
    finally:
        torch.use_deterministic_algorithms(False)
    with deterministic_warn_only():
        assert not torch.are_deterministic_algorithms_enabled()  # off stays off
    assert not torch.are_deterministic_algorithms_enabled()


def test_per_sample_targets_match_one_sample_at_a_time():
    model, x, _ = _models()["mlp"]
    target = torch.tensor([2, 0, 1, 2])
    batched = attribute(model, x, "Saliency", target)
    for i in range(4):
        assert torch.allclose(batched[i], attribute(model, x[i : i + 1], "Saliency", int(target[i]))[0])
    predicted = model(x).argmax(1)
    assert torch.equal(attribute(model, x, "InputXGradient"), attribute(model, x, "InputXGradient", predicted))


def test_integrated_gradients_completeness_on_a_linear_model():
    model = hand_linear([2.0, -1.0, 0.5], bias=0.3)
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    ig = attribute(model, x, "IntegratedGradients", baselines=0.25)
    assert torch.allclose(ig.sum(1), (model(x) - model(torch.full_like(x, 0.25))).squeeze(1), atol=1e-5)
    assert torch.allclose(ig, torch.tensor([2.0, -1.0, 0.5]) * (x - 0.25), atol=1e-5)  # w_i (x_i - b_i)


def test_integrated_gradients_completeness_on_a_relu_network():
    model, x, _ = _models()["mlp"]
    t = torch.tensor([0, 1, 2, 0])
    ig = attribute(model, x, ("IntegratedGradients", {"n_steps": 256}), t)
    f = model(x).gather(1, t.view(-1, 1)).squeeze(1) - model(torch.zeros_like(x)).gather(1, t.view(-1, 1)).squeeze(1)
    assert torch.allclose(ig.sum(1), f, atol=5e-3)  # ReLU kinks: quadrature error only


def test_feature_ablation_on_groups_equals_input_effects():
    model, x, mask = _models()["cnn"]
    t = torch.tensor([3, 1, 4, 1])
    fa = aggregate_to_groups(attribute(model, x, "FeatureAblation", t, feature_mask=mask, baselines=0.1), mask, "mean")
    assert torch.allclose(fa, input_effects(model, x, mask, 0.1, target=t), atol=1e-5)


def test_works_inside_inference_mode_on_inference_tensors():
    model, x, mask = _models()["cnn"]
    with torch.inference_mode():
        xi = x.clone()
        ig = attribute(model, xi, ("IntegratedGradients", FAST), 2)
        lc = layer_attribute(model, xi, "conv2", target=2, options={"n_steps": 4})
    assert torch.allclose(ig, attribute(model, x, ("IntegratedGradients", FAST), 2))
    assert lc.shape == (4, 4)


def test_randomised_methods_are_reproducible_from_their_seed():
    model, x, mask = _models()["mlp"]
    a = attribute(model, x, "GradientShap", 0, generator=5)
    assert torch.equal(a, attribute(model, x, "GradientShap", 0, generator=5))
    assert not torch.equal(a, attribute(model, x, "GradientShap", 0, generator=6))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(
        attribute(model, x, "NoiseTunnel(Saliency)", 0, generator=g1), attribute(model, x, "NoiseTunnel(Saliency)", 0, generator=g2)
    )


def test_one_dimensional_outputs_are_supported():
    lin = hand_linear([1.0, 2.0])
    model = nn.Sequential(lin, nn.Flatten(0))  # [N]
    out = attribute(model, torch.ones(3, 2), "InputXGradient")
    assert torch.allclose(out, torch.tensor([[1.0, 2.0]]).expand(3, 2))


def test_options_are_merged_and_split_between_noise_tunnel_and_method():
    spec = resolve_method(("NoiseTunnel(IntegratedGradients)", {"n_steps": 3}), {"nt_samples": 2})
    assert spec.label == "NoiseTunnel-IntegratedGradients" and spec.noise_tunnel and spec.randomised
    assert spec.options["n_steps"] == 3 and spec.options["nt_samples"] == 2 and spec.options["nt_type"] == "smoothgrad"
    assert resolve_method("NoiseTunnel-Saliency") == resolve_method("NoiseTunnel(Saliency)")
    assert resolve_method("Saliency").options == {"abs": True}
    assert resolve_method("FeatureAblation").grouped and not resolve_method("Saliency").grouped


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"one of \[.*'IntegratedGradients'.*'NoiseTunnel\(Saliency\)'.*\].*Did you mean 'Saliency'"):
        resolve_method("Salency")
    with pytest.raises(ValueError, match="'IntegratedGradients'"):
        attribute(nn.Linear(2, 2), torch.ones(1, 2), "NoiseTunnel(Magic)")
    with pytest.raises(ValueError, match=r"\['LayerActivation', 'LayerConductance'\]|LayerConductance"):
        layer_attribute(nn.Sequential(nn.Linear(2, 2)), torch.ones(1, 2), "0", "LayerGradCam")
    assert set(LAYER_METHOD_NAMES) == {"LayerConductance", "LayerActivation", "LayerIntegratedGradients", "LayerGradientXActivation"}


def test_unknown_options_and_bad_arguments_fail():
    with pytest.raises(ValueError, match=r"among \[.*'n_steps'.*\] but got unknown \['steps'\]"):
        resolve_method(("IntegratedGradients", {"steps": 3}))
    with pytest.raises(ValueError, match="unknown"):
        resolve_method("Saliency", {"nt_samples": 3})  # a tunnel option without a tunnel
    with pytest.raises(TypeError, match="`method`"):
        resolve_method(3)
    with pytest.raises(TypeError, match="`generator`"):
        attribute(nn.Linear(2, 2), torch.ones(1, 2), "GradientShap", generator="seed")
    with pytest.raises(ValueError, match="`inputs`"):
        attribute(nn.Linear(2, 2), torch.ones(2), "Saliency")
    with pytest.raises(TypeError, match="floating point"):
        attribute(nn.Linear(2, 2), torch.ones(1, 2, dtype=torch.long), "Saliency")
    with pytest.raises(ValueError, match="`target`"):
        attribute(nn.Linear(2, 2), torch.ones(1, 2), "Saliency", target=5)
    model = nn.Sequential(nn.Linear(2, 3))
    with pytest.raises(ValueError, match="`reduction`"):
        layer_attribute(model, torch.ones(1, 2), "0", reduction="max")
    with pytest.raises(ValueError, match="unknown"):
        layer_attribute(model, torch.ones(1, 2), "0", options={"steps": 2})
    with pytest.raises(ValueError, match="nope"):
        layer_attribute(model, torch.ones(1, 2), "nope")


def test_layer_conductance_completeness_and_layer_activation_means():
    model, x, _ = _models()["cnn"]
    t = torch.tensor([0, 1, 2, 3])
    cond = layer_attribute(model, x, "conv2", "LayerConductance", target=t, options={"n_steps": 128})
    f = model(x).gather(1, t.view(-1, 1)).squeeze(1) - model(torch.zeros_like(x)).gather(1, t.view(-1, 1)).squeeze(1)
    # conductance sums to IG's total (up to quadrature error at the ReLU and max-pool kinks)
    assert cond.shape == (4, 4) and torch.allclose(cond.sum(1), f, rtol=0.03, atol=1e-2)
    hooks = all_hook_counts(model)
    act = layer_attribute(model, x, "relu2", "LayerActivation")
    with capture(model, ["relu2"]) as acts, torch.no_grad():
        model(x)
    assert torch.allclose(act, acts["relu2"].mean((2, 3)))
    assert all_hook_counts(model) == hooks


@pytest.mark.parametrize("method", ["IntegratedGradients", "FeatureAblation", "DeepLift"])
def test_a_tensor_baseline_of_one_sample_or_a_scalar_tensor_is_taken_as_the_causal_effects_take_it(method):
    from captum.attr import DeepLift, FeatureAblation, IntegratedGradients

    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).eval()
    x, mean = torch.rand(4, 6, generator=g), torch.rand(6, generator=g)
    cls = {"IntegratedGradients": IntegratedGradients, "FeatureAblation": FeatureAblation, "DeepLift": DeepLift}[method]
    direct = cls(model).attribute(x, baselines=mean[None].expand_as(x), target=1)
    # before the fix: a baseline [6] for inputs [4, 6] raised Captum's AssertionError "Baseline can be provided as a
    # tensor for just one input ..." and a 0-dim tensor an IndexError, though `input_effects` takes both
    torch.testing.assert_close(attribute(model, x, method, target=1, baselines=mean), direct, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(attribute(model, x, method, target=1, baselines=torch.tensor(0.25)),
                               attribute(model, x, method, target=1, baselines=0.25), atol=1e-6, rtol=1e-5)
