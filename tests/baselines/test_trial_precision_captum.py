"""Captum's noise methods on bfloat16 and float16 models: its float32 noise promoted the model's rows to
float32 ('mat1 and mat2 must have the same dtype'); the rows now reach the model in the inputs' dtype."""

import copy

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe
from lightning_causal.baselines import attribute

X = torch.rand(8, 6, generator=torch.Generator().manual_seed(1))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2)).eval()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", ["GradientShap", "NoiseTunnel(IntegratedGradients)", "NoiseTunnel(Saliency)"])
def test_noise_methods_on_a_half_precision_model_match_the_float32_model(method, dtype):
    ref = attribute(_model(), X, method, target=1, generator=0)
    got = attribute(copy.deepcopy(_model()).to(dtype), X.to(dtype), method, target=1, generator=0)
    assert got.shape == ref.shape and bool(torch.isfinite(got).all())
    # the same draws: the difference is the model's rounding (bf16: about 0.5% of the largest attribution)
    assert (got.double() - ref.double()).abs().max() <= 0.02 * ref.abs().max()


def test_captum_baseline_with_gradient_shap_runs_on_a_bf16_model():
    probe = Probe(X.bfloat16(), torch.zeros(8, dtype=torch.long))
    result = CaptumBaseline(("GradientShap",)).run(_model().bfloat16(), probe)
    assert bool(torch.isfinite(result.maps["GradientShap"].float()).all())


def test_inputs_of_another_dtype_are_refused_with_what_to_do():
    # the estimators name the argument and the fix; attribute() gave torch's bare 'mat1 and mat2 must have the same dtype'
    with pytest.raises(RuntimeError, match=r"Argument `inputs` is torch.float32 but the model's parameters are torch.float64"):
        attribute(_model().double(), X, "Saliency", target=1)
