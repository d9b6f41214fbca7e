"""Captum baselines in the model's dtype: DeepLift on a float16 model gave NaN attributions where an
input equalled its reference (Captum's eps=1e-10 is 0 in float16, so its rescale rule divided 0 by
0), and ShapleyValueSampling returned float32 attributions for a float64 model (Captum sums its
terms in float32)."""

import torch
from torch import nn

from lightning_causal.baselines.captum_methods import attribute


def _model(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 3)).to(dtype)


def test_deeplift_on_a_float16_model_has_no_nan_and_matches_float32():
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:3] = 0.0  # inputs equal to the reference 0: every unit's input difference is 0
    half = attribute(_model(torch.float16), x.half(), "DeepLift", target=0)
    full = attribute(_model(torch.float32), x, "DeepLift", target=0)
    assert half.dtype == torch.float16 and not bool(half.isnan().any())
    torch.testing.assert_close(half.float(), full, atol=5e-3, rtol=5e-2)
    assert bool((half[:3] == 0).all())  # no input difference, no attribution (DeepLift's completeness)


def test_deeplift_on_bfloat16_stays_finite_and_close():
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:3] = 0.0
    b = attribute(_model(torch.bfloat16), x.bfloat16(), "DeepLift", target=0)
    assert b.dtype == torch.bfloat16 and bool(torch.isfinite(b).all())
    torch.testing.assert_close(b.float(), attribute(_model(torch.float32), x, "DeepLift", target=0), atol=2e-2, rtol=1e-1)


def test_shapley_sampling_of_a_float64_model_is_float64_and_exact_for_an_additive_model():
    model = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 3.0]], dtype=torch.float64))
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    phi = attribute(model, x, "ShapleyValueSampling", target=0, feature_mask=torch.arange(4).view(1, 4), generator=0)
    assert phi.dtype == torch.float64
    torch.testing.assert_close(phi, x * model.weight, atol=1e-6, rtol=1e-6)  # additive: phi_i = w_i x_i (float32 sums)
