"""A timm-style ViT (the usual plain-PyTorch layout: ``attn.qkv`` fused, ``attn.proj`` the output
projection, ``F.scaled_dot_product_attention`` between them): its heads are ``attn.proj``'s input.

``num_heads`` on ``attn.proj`` itself (its output mixes the heads) or on a whole block (the residual
stream) used to be accepted, ranking slices of projected features as if they were heads; both are
now refused naming ``'...attn.proj:input'``, as for ``out_proj``/``o_proj``/``c_proj``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import Zero, intervene, unit_effects


class _Attention(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.num_heads, self.qkv, self.proj = h, nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, d))


class _Block(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d), _Attention(d, h)
        self.norm2, self.mlp = nn.LayerNorm(d), nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _TimmViT(nn.Module):
    """1x8x8 images, 2x2 patches by a strided Conv2d, a [CLS] token, two blocks of 4 heads."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(1, 8, 2, stride=2)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
        self.pos_embed = nn.Parameter(torch.randn(1, 17, 8) * 0.1)
        self.blocks = nn.Sequential(_Block(8, 4), _Block(8, 4))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(len(t), -1, -1), t], 1) + self.pos_embed
        return self.head(self.blocks(t)[:, 0])


@pytest.fixture()
def vit_and_images() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return _TimmViT().double().eval(), torch.rand(4, 1, 8, 8, dtype=torch.float64)


@pytest.mark.parametrize("site", ["blocks.0.attn.proj", "blocks.0"])
def test_num_heads_after_the_projection_is_refused_naming_its_input(vit_and_images, site):
    model, x = vit_and_images
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.proj:input"):
        unit_effects(model, x, site, num_heads=4)
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.proj:input"), intervene(model, {site: Zero(units=[1], num_heads=4)}):
        model(x)


def test_heads_at_the_projection_input_equal_a_hook_loop(vit_and_images):
    model, x = vit_and_images
    effects = unit_effects(model, x, "blocks.0.attn.proj:input", num_heads=4)
    with torch.no_grad():
        clean = model(x)
        target = clean.argmax(1, keepdim=True)
        expected = torch.zeros(4, 4, dtype=torch.float64)
        for head in range(4):
            def zero_head(module, args, head=head):
                h = args[0].clone()
                h[..., 2 * head:2 * head + 2] = 0.0
                return (h,)

            handle = model.blocks[0].attn.proj.register_forward_pre_hook(zero_head)
            expected[:, head] = (clean.gather(1, target) - model(x).gather(1, target))[:, 0]
            handle.remove()
    torch.testing.assert_close(effects, expected, rtol=0, atol=1e-12)
    assert expected.abs().min() > 1e-6  # every head moves the output: the comparison is not of zeros
