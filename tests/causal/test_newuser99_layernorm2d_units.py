"""timm's ``LayerNorm2d`` (a subclass of ``nn.LayerNorm`` that permutes ``[N, C, H, W]`` to channels last and back, as
ConvNeXt's stem and downsampling layers do) returns its channels on dimension 1. The default units (dimension 1) of it,
of an activation after it and of its input were refused as "features last", advising `unit_dim=-1`, which takes the
image's columns. They are its channels, equal to a hand loop that zeroes each channel."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.unit_sites import _normalises_last
from tests.callbacks.test_newuser99_timm_style_fits import _by_hand


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def _net(width: int) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), LayerNorm2d(width), nn.GELU(), nn.Conv2d(width, 5, 1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2)).double().eval()
    with torch.no_grad():  # a trained affine part, so that (out - bias) / weight is not out
        net[1].weight.uniform_(0.5, 2.0)
        net[1].bias.uniform_(-1.0, 1.0)
    return net


@pytest.mark.parametrize("size", [5, 4])  # 5: only dimension 1 is 4 wide; 4: C == H == W, the output's statistics say
@pytest.mark.parametrize("site", ["1", "2", "1:input"])
def test_layernorm2d_channels_are_the_default_units(size, site):
    net = _net(4)
    x = torch.randn(6, 3, size, size, dtype=torch.float64)
    module = net[1] if site == "1:input" else net[int(site)]
    effects = unit_effects(net, x, site)
    assert effects.shape == (6, 4)
    torch.testing.assert_close(effects, _by_hand(net, x, module, 4, "input" if site.endswith(":input") else None),
                               rtol=0, atol=1e-12)


def test_plain_layernorm_of_a_sequence_still_refused():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Flatten(), nn.Linear(16, 2)).eval()
    with pytest.raises(ValueError, match="has its features last"):
        unit_effects(net, torch.randn(3, 4, 4), "1")  # [N, T, D] with T == D: still features last


class _GemmaRMSNorm(nn.Module):  # a norm of your own on nn.Module, scaling by (1 + weight): its features are last
    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(-0.9, 2.0, d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * (1 + self.weight)


def test_own_rms_norm_is_read_features_last_by_its_class():
    """An output that, less bias over weight, has a mean square of 1 along dimension 1: the statistics of a subclass of
    torch's norm would read it channels-first; a norm of your own on nn.Module keeps its features last."""
    torch.manual_seed(0)
    norm = _GemmaRMSNorm(4)
    z = torch.randn(3, 4, 4)
    z = z / z.pow(2).mean(1, keepdim=True).sqrt()  # unit mean square along dimension 1
    assert _normalises_last(norm, z * norm.weight.detach()[:, None])
