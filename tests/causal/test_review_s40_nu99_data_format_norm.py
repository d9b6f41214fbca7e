"""Review of 19fb3af7 / 30983e0b: a layer normalisation's layout is read from its widths, and where dimension 1 and the
last are equally wide (C == W) from its output's statistics only for subclasses of torch's norms. ConvNeXt's own
`LayerNorm` (facebookresearch/ConvNeXt, on nn.Module, `data_format="channels_first"` in its stem and downsampling) on a
[N, 16, 16, 16] output was still taken as features last: its default units (its channels) refused, advising
`unit_dim=-1`, the image's columns. Its `data_format` says the layout; the default units equal a hand loop zeroing each
channel, and its channels-last use on [N, T, D] with T == D is still refused."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import unit_effects
from tests.callbacks.test_newuser99_timm_style_fits import _by_hand


class LayerNorm(nn.Module):  # facebookresearch/ConvNeXt models/convnext.py
    def __init__(self, normalized_shape: int, eps: float = 1e-6, data_format: str = "channels_last"):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(normalized_shape)), nn.Parameter(torch.zeros(normalized_shape))
        self.eps, self.data_format, self.normalized_shape = eps, data_format, (normalized_shape,)

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


@pytest.mark.parametrize("site", ["1", "2", "1:input"])
def test_channels_first_layernorm_of_convnext_when_c_equals_w(site):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 4, stride=4), LayerNorm(16, data_format="channels_first"), nn.GELU(),
                        nn.Conv2d(16, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).double().eval()
    x = torch.randn(3, 3, 64, 64, dtype=torch.float64)  # [N, 16, 16, 16] after the stem: C == H == W
    module = net[1] if site == "1:input" else net[int(site)]
    effects = unit_effects(net, x, site)
    assert effects.shape == (3, 16)
    torch.testing.assert_close(effects, _by_hand(net, x, module, 16, "input" if site.endswith(":input") else None),
                               rtol=0, atol=1e-12)


def test_channels_last_layernorm_of_a_sequence_still_refused():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), LayerNorm(4), nn.Flatten(), nn.Linear(16, 2)).eval()
    with pytest.raises(ValueError, match="has its features last"):
        unit_effects(net, torch.randn(3, 4, 4), "1")  # [N, T, D] with T == D
