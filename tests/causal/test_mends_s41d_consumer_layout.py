"""A timm-style ViT stem's `pos_drop` (the patches' [N, 16, 32] with a class token concatenated and positions added in
plain code: [N, 17, 32]) took the 17 positions as its default units in silence: the rule for an input made by functional
code read the layout of the last module output of that shape before the site, and there was none (final_read_B F6).
Where there is none, the module that reads the site's output says: the block's attention reads its features last, so
the default is refused with `unit_dim=-1` as the way out; a 1-D CNN whose functional concatenation feeds a Conv1d
keeps its channels."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class PatchEmbed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 32, 4, 4)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [N, 16, 32]


class ViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed()
        self.cls, self.pos = nn.Parameter(torch.zeros(1, 1, 32)), nn.Parameter(torch.randn(1, 17, 32) * 0.02)
        self.pos_drop = nn.Dropout(0.1)
        self.block = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
        self.norm, self.head = nn.LayerNorm(32), nn.Linear(32, 10)

    def forward(self, x):
        t = self.patch_embed(x)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], 1) + self.pos  # [N, 17, 32]: no module gave this shape
        return self.head(self.norm(self.block(self.pos_drop(t)))[:, 0])


class ConvWithSummary(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act, self.mix, self.head = nn.Conv1d(2, 6, 3), nn.ReLU(), nn.Conv1d(6, 4, 1), nn.Linear(4, 3)

    def forward(self, x):
        h = self.conv(x)  # [N, 6, 5]
        h = torch.cat([h, h.mean(2, keepdim=True)], 2)  # [N, 6, 6]: a summary step appended in plain code
        return self.head(self.mix(self.act(h)).mean(2))


def test_a_vit_pos_drop_refuses_the_positions_as_units():
    torch.manual_seed(0)
    model, x = ViT().eval(), torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"has its features last .* Pass `unit_dim=-1`"):
        unit_effects(model, x, "pos_drop", target=0)
    assert unit_effects(model, x, "pos_drop", target=0, unit_dim=-1).shape == (4, 32)  # the features


def test_a_conv1d_read_site_after_functional_code_keeps_its_channels():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 7, generator=torch.Generator().manual_seed(1))
    assert unit_effects(ConvWithSummary().eval(), x, "act", target=0).shape == (4, 6)
