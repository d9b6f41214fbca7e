"""The rounding-effects warning of unit_effects (effects/rounding_effects.py) in 16-bit dtypes: a bound of 64 epsilons of
the largest output (as it once was) is 50% of it in bfloat16 (6% in float16), so every ordinary bfloat16 MLP was told its
units' ranking is rounding error and blamed an SAE's error term (effects up to 28% of the largest logit). The bound is
ROUNDING_ULPS (4) epsilons in every dtype: an ordinary layer is not warned about, and an SAE whose error term cancels
its latents (under one epsilon in every dtype) still is, the warning then naming the dtype and `model.float()`."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class CancellingSplice(nn.Module):
    """The SAE's error term computed from the latents it sets: dec(z') + (h - dec(z')) = h, whatever z' holds."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer, self.enc, self.dec = nn.Linear(6, 8), nn.Linear(8, 16), nn.Linear(16, 8)
        self.latents, self.head = nn.Identity(), nn.Linear(8, 3)

    def forward(self, x):
        h = self.layer(x)
        rec = self.dec(self.latents(torch.relu(self.enc(h))))
        return self.head(rec + (h - rec).detach())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_an_ordinary_half_precision_layer_is_not_warned(dtype):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4)).eval().to(dtype)
    x = torch.randn(32, 16).to(dtype)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        effects = unit_effects(model, x, "1")
    assert float(effects.abs().max()) > 0.1 * float(model(x).abs().max())  # effects far from rounding
    assert not [w for w in seen if "float rounding" in str(w.message)]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_cancelling_splice_is_still_warned_in_half_precision(dtype):
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(1)).to(dtype)
    with pytest.warns(UserWarning, match=r"(?s)only by float rounding.*model\.float\(\)"):
        unit_effects(CancellingSplice().eval().to(dtype), x, "latents")
