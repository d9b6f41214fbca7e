"""A layer normalisation's layout where its dimension 1 and last are equally wide (``unit_sites._normalises_last``):

- an input tiny next to ``eps`` gave both dimensions the same misfit, and rounding decided: OpenAI CLIP's fp16-safe
  ``LayerNorm`` (a subclass overriding ``forward``, normalising the last dimension) on ``[N, T, D]``, ``T == D``, was
  read channels-first for some seeds and its default units (positions) silently accepted;
- an ':input' site ran its norm on the input for every site, also where the widths decide: a conditional norm whose
  forward takes a second argument raised ``TypeError``, and the norm's own hooks fired on the extra call;
- timm's ``LayerNorm2d`` read channels-first was no channels-first source: ``num_heads`` on it sliced the image's columns
  and ``unit_dim=-1`` units were named neurons, not positions."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.input_sites import input_sites
from lightning_causal.causal.engine.unit_sites import inspect_site, named_unit_kind


class _ClipLayerNorm(nn.LayerNorm):  # OpenAI CLIP's LayerNorm (fp16 safety): normalises the last dimension
    def forward(self, x):
        return super().forward(x.float()).to(x.dtype)


class _LayerNorm2d(nn.LayerNorm):  # timm's: normalises dimension 1 of [N, C, H, W]
    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


class _ChannelsFirstRMSNorm(nn.RMSNorm):  # an RMS norm of dimension 1 (no mean to read: the mean square decides)
    def forward(self, x):
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


@pytest.mark.parametrize("std", [1e-3, 3e-3])
def test_a_tiny_input_keeps_a_sequence_norm_features_last(std):
    misread = []
    for seed in range(20):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(8, 8), _ClipLayerNorm(8), nn.Flatten(), nn.Linear(64, 2)).eval()
        with torch.no_grad():
            net[0].weight.copy_(torch.eye(8) * std)
            net[0].bias.zero_()
        x = torch.randn(4, 8, 8)
        if not inspect_site(net, "1", lambda: net(x)).features_last:  # noqa: B023 (run at once)
            misread.append(seed)
    assert misread == []


@pytest.mark.parametrize("norm, std", [(_LayerNorm2d, 1e-3), (_LayerNorm2d, 1.0), (_ChannelsFirstRMSNorm, 1.0)])
def test_a_channel_norm_is_read_channels_first(norm, std):
    """C == W: for a LayerNorm the mean of 0 along dimension 1 says it however tiny its input (std 1e-3: read features
    last for all 20 seeds before); for an RMS norm on a usual input the mean square; the output, and an activation
    after it, hold the channels first."""
    for seed in range(20):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(3, 4, 1), norm(4), nn.GELU()).eval()
        with torch.no_grad():
            net[0].weight.mul_(std)
            net[0].bias.zero_()
            net[1].weight.uniform_(0.5, 2.0)
            if getattr(net[1], "bias", None) is not None:
                net[1].bias.uniform_(-1.0, 1.0)
        x = torch.randn(2, 3, 4, 4)
        for site in ("1", "2"):
            facts = inspect_site(net, site, lambda: net(x))  # noqa: B023 (run at once)
            assert (facts.features_last, facts.channels_first, facts.channels_source) == (False, True, "1"), seed


class _CondLayerNorm(nn.LayerNorm):  # a conditional layer norm: its scale from a second input
    def forward(self, x, cond):
        return super().forward(x) * (1 + cond[:, None, :])


class _CondNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.norm, self.cond, self.head = nn.Linear(8, 8), _CondLayerNorm(8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.norm(self.fc(x), self.cond(x.mean(1))).mean(1))


def test_a_norm_taking_two_arguments_has_an_input_site():
    net = _CondNet().eval()
    x = torch.randn(4, 5, 8)
    effects = unit_effects(net, x, "norm:input", unit_dim=-1)
    assert effects.shape == (4, 8)
    with pytest.raises(ValueError, match="has its features last"):
        unit_effects(net, x, "norm:input")  # [N, T, D]: dimension 1 holds positions


@pytest.mark.parametrize("norm, steps", [(nn.LayerNorm, 5), (_ClipLayerNorm, 8)])  # the widths decide; they tie
def test_reading_an_input_site_fires_no_hook_of_its_norm(norm, steps):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 8), norm(8), nn.Linear(8, 2)).eval()
    calls = []
    net[1].register_forward_hook(lambda *_: calls.append(1))
    with input_sites(net, ["1:input"]):
        facts = inspect_site(net, "1:input", lambda: net(torch.randn(1, steps, 8)))
    assert facts.features_last and calls == []  # the pass stops at the site, before the norm runs


def test_layernorm2d_is_a_channels_first_source():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _LayerNorm2d(4), nn.GELU(), nn.Conv2d(4, 5, 1))
    net = nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2)).eval()
    x = torch.randn(3, 3, 4, 4)  # C == H == W: the norm's output says it (its input, run through the norm's forward)
    for site in ("0.1", "0.2", "0.1:input"):
        with input_sites(net, [site]):
            facts = inspect_site(net, site, lambda: net(x[:1]))  # noqa: B023 (run at once)
        assert (facts.channels_first, facts.channels_source, named_unit_kind(facts, -1, None)) == (True, "0.1",
                                                                                                  "position"), site
        with pytest.raises(ValueError, match="with its channels on dimension 1"):
            unit_effects(net, x, site, num_heads=2)  # slices of the image's columns
