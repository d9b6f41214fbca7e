"""Options a Captum user passes, checked before Captum sees them (newuser28, a Captum maintainer's check).

- A ``baselines`` *option* (``("IntegratedGradients", {"baselines": b})``, which overrides the argument) reached
  Captum unchecked: a wrong shape failed on Captum's ``assert`` (gone under ``python -O``) or a torch shape error
  naming no option, a number in GradientShap on Captum's "has to be provided in a form of a torch.Tensor", and a
  NaN gave NaN attributions silently (the ``baselines`` argument was refused for the same values).
- Token ids: a ``baselines`` argument that is no token id (0.5), or a whole one in a float tensor
  (``torch.tensor(0.)``), failed inside the model's embedding ("Expected tensor for argument #1 'indices'"); the
  first is refused saying what to give, the second taken as the token id it holds, and the option takes whole
  floats as the argument does.
- A tuple of inputs, as Captum takes it, was refused with "got tuple" only; the message says how to explain each
  input (the others as ``additional_forward_args``) and that this holds them as they are.
- A per-sample ``feature_mask`` made by ``expand`` (one mask for every sample, no copy) failed in Captum's
  ShapleyValueSampling, which calls ``.view(-1)`` on it; FeatureAblation took it.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from captum.attr import GradientShap, IntegratedGradients, ShapleyValueSampling
from torch import nn

from lightning_causal.baselines import attribute


def _model_and_inputs() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval()
    return model, torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(("method", "label"), [("IntegratedGradients", "IntegratedGradients"), ("DeepLift", "DeepLift"),
                                             ("FeatureAblation", "FeatureAblation"),
                                             ("NoiseTunnel(IntegratedGradients)", "NoiseTunnel-IntegratedGradients")])
def test_a_baselines_option_of_a_wrong_shape_or_not_finite_is_refused_naming_the_option(method: str, label: str) -> None:
    model, x = _model_and_inputs()
    with pytest.raises(ValueError, match=rf"Expected option `baselines` of method `{label}` to be a scalar or broadcastable to "
                                         r"\[4, 3\] but got \[2, 3\]"):
        attribute(model, x, (method, {"baselines": torch.zeros(2, 3, dtype=torch.float64)}), 0)
    with pytest.raises(ValueError, match="Expected option `baselines` of method .* to be finite"):
        attribute(model, x, (method, {"baselines": float("nan")}), 0)
    with pytest.raises(ValueError, match=r"Expected argument `baselines` to be a scalar or broadcastable to \[4, 3\] but got \[2, 3\]"):
        attribute(model, x, method, 0, baselines=torch.zeros(2, 3, dtype=torch.float64))  # the argument, named as it is spelt


def test_a_baselines_option_still_gives_captums_numbers() -> None:
    model, x = _model_and_inputs()
    b = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)  # one sample, without its batch dimension
    ours = attribute(model, x, ("IntegratedGradients", {"baselines": b, "n_steps": 8}), 1)
    ref = IntegratedGradients(model).attribute(x, baselines=b.unsqueeze(0), target=1, n_steps=8)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)


def test_gradient_shaps_baselines_option_is_a_distribution_a_number_being_one_sample() -> None:
    model, x = _model_and_inputs()
    ours = attribute(model, x, ("GradientShap", {"baselines": 0.5, "n_samples": 5}), 1, generator=4)
    torch.manual_seed(4), np.random.seed(4), random.seed(4)
    ref = GradientShap(model).attribute(x, baselines=torch.full((1, 3), 0.5, dtype=torch.float64), target=1, n_samples=5)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=r"Expected option `baselines` of method `GradientShap` to be a number or baseline "
                                         r"samples \[B, 3\] \(each shaped like one input\) but got shape \[2, 4\]"):
        attribute(model, x, ("GradientShap", {"baselines": torch.zeros(2, 4, dtype=torch.float64)}), 1)
    with pytest.raises(ValueError, match="Expected option `baselines` of method `GradientShap` to be finite"):
        attribute(model, x, ("GradientShap", {"baselines": torch.full((2, 3), float("inf"), dtype=torch.float64)}), 1)


def test_an_expanded_per_sample_feature_mask_gives_captums_shapley_values() -> None:
    model, x = _model_and_inputs()
    mask = torch.tensor([[0, 1, 1]]).expand(4, 3)  # one row per sample, no copy
    ours = attribute(model, x, ("ShapleyValueSampling", {"n_samples": 3}), 0, feature_mask=mask, generator=2)
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    ref = ShapleyValueSampling(model).attribute(x, baselines=0.0, target=0, feature_mask=mask.contiguous(), n_samples=3)
    torch.testing.assert_close(ours, ref.to(x.dtype), rtol=1e-6, atol=1e-7)  # Captum sums its terms in float32
    assert bool((ours[:, 1] == ours[:, 2]).all()) and ours.abs().max() > 0


def test_token_ids_take_a_whole_baseline_and_refuse_another_naming_what_to_give() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2)).double().eval()
    ids = torch.tensor([[1, 4, 7], [2, 2, 9], [5, 3, 8]])
    brute = torch.stack([model(ids)[:, 0] - model(ids.index_fill(1, torch.tensor([g]), 0))[:, 0] for g in range(3)], 1).detach()
    for given in (0, 0.0, torch.tensor(0.0)):
        torch.testing.assert_close(attribute(model, ids, ("FeatureAblation", {"baselines": given}), 0), brute, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(attribute(model, ids, "FeatureAblation", 0, baselines=given), brute, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"Expected argument `baselines` to be an integer \(a token id\) for integer inputs .* but got "
                                         r"tensor\(0.5000\)"):
        attribute(model, ids, "FeatureAblation", 0, baselines=0.5)
    with pytest.raises(ValueError, match=r"Expected option `baselines` of method `FeatureAblation` to be an integer \(a token id\)"):
        attribute(model, ids, ("FeatureAblation", {"baselines": 0.5}), 0)


def test_a_tuple_of_inputs_as_captum_takes_it_is_refused_saying_how_to_explain_each() -> None:
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(2, 2)

        def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            return self.a(x) * self.b(z)

    torch.manual_seed(0)
    model, x, z = TwoInputs().double(), torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"got a tuple of 2 tensors \(\[4, 3\], \[4, 2\]\): .* for model\(x1, x2\) explain x1 and "
                                         r"pass the others as `additional_forward_args=\(x2,\)`"):
        attribute(model, (x, z), "IntegratedGradients", 0)
    # the way out gives Captum's attributions of x with z as it is (as Captum's additional_forward_args), which the message says
    # differ from Captum's tuple call, where z moves toward its baseline along the same path
    ours = attribute(model, x, "IntegratedGradients", 0, additional_forward_args=(z,))
    ref = IntegratedGradients(model).attribute((x, z), baselines=(0.0, 0.0), target=0, n_steps=16)
    ref_x = IntegratedGradients(model).attribute(x, baselines=0.0, target=0, n_steps=16, additional_forward_args=(z,))
    torch.testing.assert_close(ours, ref_x, rtol=1e-12, atol=0)
    assert not torch.allclose(ours, ref[0])  # another quantity, as said
