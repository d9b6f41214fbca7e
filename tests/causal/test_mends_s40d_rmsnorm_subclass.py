"""A subclass of ``nn.RMSNorm`` under a name of its own (``class Norm(nn.RMSNorm)``, a norm computing in float32) on a
sequence ``[N, T, D]`` had its default units, dimension 1 (the positions), accepted silently: ``unit_effects(net, x,
"1")`` returned one effect per position, where ``nn.RMSNorm`` itself and ``nn.LayerNorm`` subclasses are refused as
features last. It is refused as they are, with T != D and with T == D (its output's statistics say the features are last)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects

pytestmark = pytest.mark.skipif(not hasattr(nn, "RMSNorm"), reason="nn.RMSNorm: torch 2.4+")


class Norm(nn.RMSNorm if hasattr(nn, "RMSNorm") else nn.Module):
    def forward(self, x):
        return super().forward(x.float()).type_as(x)


@pytest.mark.parametrize("steps", [5, 8])  # T != D, T == D
def test_an_rmsnorm_subclass_is_a_norm_over_the_features_last(steps):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 8), Norm(8), nn.Flatten(), nn.Linear(8 * steps, 2)).eval()
    x = torch.randn(4, steps, 8)
    with pytest.raises(ValueError, match=r"units of '1' on dimension 1"):
        unit_effects(net, x, "1")
    assert unit_effects(net, x, "1", unit_dim=-1).shape == (4, 8)
