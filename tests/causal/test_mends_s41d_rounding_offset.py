"""The rounding-effects warning of unit_effects fired on a float32 regression whose outputs carry a large offset (a
price near 1e6): its units' effects of a few units are 78 float32 epsilons of the output and exact to 0.6% against a
float64 loop, yet the bound of 64 epsilons of the largest output (122 of them here, with the output near 2^20) called
their ranking rounding error (final_read_B F1). One bound of ROUNDING_ULPS = 4 epsilons serves every dtype: the offset
regression is not warned, an SAE splice whose error term cancels its latents (under one epsilon) still is."""

import warnings

import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.causal.test_review_newuser102_rounding_half import CancellingSplice


def _rounding_warnings(model: nn.Module, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, list[str]]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        effects = unit_effects(model, x, layer, target=0)
    return effects, [str(w.message) for w in seen if "float rounding" in str(w.message)]


def test_a_float32_regression_with_a_large_offset_is_not_warned():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1)).eval()
    with torch.no_grad():
        model[2].weight.mul_(10.0)
        model[2].bias.fill_(1e6)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    effects, warned = _rounding_warnings(model, x, "1")
    assert warned == []
    m64 = model.double()  # the effects of zeroing each unit, in float64 by hand
    with torch.no_grad():
        h = m64[1](m64[0](x.double()))
        cut = h.unsqueeze(1).repeat(1, 16, 1)
        cut[:, torch.arange(16), torch.arange(16)] = 0
        reference = m64[2](h)[:, None, 0] - m64[2](cut)[..., 0]
    assert float(reference.abs().max()) > 1.0  # real effects, not rounding
    assert float((effects.double() - reference).abs().max()) < 0.02 * float(reference.abs().max())


def test_a_cancelling_splice_is_still_warned_in_float32():
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
    _, warned = _rounding_warnings(CancellingSplice().eval(), x, "latents")
    assert len(warned) == 1
