"""A vit-pytorch-style ViT (``Attention``: ``heads``, a fused ``to_qkv`` without bias, ``to_out =
Sequential(Linear, Dropout)``; ``Transformer.layers`` a ModuleList of [attention, feed-forward]):
its heads are ``to_out.0``'s input.

``num_heads=4`` on ``to_out.0`` (the output projection) used to be accepted, ranking slices of
projected features as heads, and on the fused ``to_qkv`` it only warned (the count under
``heads`` was not read), while the refusals on the attention named no site. Now the first two
are refused, ``to_qkv`` passes with ``num_heads=3 * heads`` without a warning, and every refusal
names ``'...to_out.0:input'``.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class _Attention(nn.Module):
    def __init__(self, dim: int = 8, heads: int = 4, dim_head: int = 2) -> None:
        super().__init__()
        self.heads, self.norm = heads, nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = (z.view(n, t, self.heads, -1).transpose(1, 2) for z in self.to_qkv(self.norm(x)).chunk(3, dim=-1))
        attention = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, -1)
        return self.to_out((attention @ v).transpose(1, 2).reshape(n, t, -1))


class _LucidViT(nn.Module):
    """1x8x8 images, 2x2 patches by Unfold + Linear, a [CLS] token, two layers."""

    def __init__(self) -> None:
        super().__init__()
        self.unfold, self.embed = nn.Unfold(2, stride=2), nn.Linear(4, 8)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
        self.pos_embedding = nn.Parameter(torch.randn(1, 17, 8) * 0.1)
        self.layers = nn.ModuleList([nn.ModuleList([_Attention(), nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 16), nn.GELU(),
                                                                                nn.Linear(16, 8))]) for _ in range(2)])
        self.head = nn.Linear(8, 3)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.embed(self.unfold(img).transpose(1, 2))
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1) + self.pos_embedding
        for attention, feed_forward in self.layers:
            x = attention(x) + x
            x = feed_forward(x) + x
        return self.head(x[:, 0])


@pytest.fixture()
def vit_and_images() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return _LucidViT().double().eval(), torch.rand(3, 1, 8, 8, dtype=torch.float64)


@pytest.mark.parametrize("site", ["layers.0.0.to_out.0", "layers.0.0.to_out", "layers.0.0", "layers.0.0.to_qkv"])
def test_num_heads_where_slices_are_not_heads_is_refused_naming_the_heads(vit_and_images, site):
    model, x = vit_and_images
    with pytest.raises(ValueError, match=r"layers\.0\.0\.to_out\.0:input"):
        unit_effects(model, x, site, num_heads=4)


def test_the_fused_projection_takes_its_query_key_and_value_heads_without_a_warning(vit_and_images):
    model, x = vit_and_images
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert unit_effects(model, x, "layers.0.0.to_qkv", num_heads=12).shape == (3, 12)


def test_heads_at_the_projection_input_equal_a_hook_loop(vit_and_images):
    model, x = vit_and_images
    effects = unit_effects(model, x, "layers.0.0.to_out.0:input", num_heads=4)
    with torch.no_grad():
        clean = model(x)
        target = clean.argmax(1, keepdim=True)
        expected = torch.zeros(3, 4, dtype=torch.float64)
        for head in range(4):
            def zero_head(module, args, head=head):
                h = args[0].clone()
                h[..., 2 * head:2 * head + 2] = 0.0
                return (h,)

            handle = model.layers[0][0].to_out[0].register_forward_pre_hook(zero_head)
            expected[:, head] = (clean.gather(1, target) - model(x).gather(1, target))[:, 0]
            handle.remove()
    torch.testing.assert_close(effects, expected, rtol=0, atol=1e-12)
    assert expected.abs().min() > 1e-6
