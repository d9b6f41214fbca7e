"""A block that convolves was read as channels first whatever it returned: timm's ``PatchEmbed`` (a Conv2d whose
``[N, D, h, w]`` it flattens and transposes to ``[N, h·w, D]``) and Hugging Face's ``ViTEmbeddings`` (the same, a
[CLS] token and positions added) took the patches as default units, in silence, where a user means the D embedding
channels (final_read_F F3). Such a block now has its features last: the default units are refused with the way to the
channels (``unit_dim=-1``), as for other ``[N, T, D]`` token layers; a block whose output keeps the channels first
(a residual block, a pixel shuffle, a flattened ``[N, C, h·w]``) keeps them as units."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.causal.test_mends_s41d_consumer_layout import ViT


def _x() -> torch.Tensor:
    return torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_a_timm_patch_embed_refuses_the_patches_as_units():
    torch.manual_seed(0)
    model = ViT().eval()
    with pytest.raises(ValueError, match=r"has its features last \(the block flattens its Conv2d's channels last"):
        unit_effects(model, _x(), "patch_embed", target=0)
    assert unit_effects(model, _x(), "patch_embed", target=0, unit_dim=-1).shape == (4, 32)  # the D channels
    assert unit_effects(model, _x(), "patch_embed.proj", target=0).shape == (4, 32)  # the conv itself: channels


def test_hugging_face_vit_embeddings_refuse_the_tokens_as_units():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=4, intermediate_size=64, num_labels=3)
    model = transformers.ViTForImageClassification(config).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"'vit.embeddings' .* has its features last .* Pass `unit_dim=-1`"):
            unit_effects(model, _x(), "vit.embeddings", target=0, output=lambda o: o.logits)
        assert unit_effects(model, _x(), "vit.embeddings", target=0, output=lambda o: o.logits,
                            unit_dim=-1).shape == (4, 32)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.bn, self.c2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.c2(torch.relu(self.bn(self.c1(x)))))


class _Shuffle(nn.Module):  # [N, 16, 16, 16] to [N, 4, 32, 32]: its last dimension as wide as the conv's channels
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.shuffle = nn.Conv2d(4, 16, 3, padding=1), nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class _Flat(nn.Module):  # [N, 6, h·w]: flattened, channels kept first
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(2)


class _Net(nn.Module):
    def __init__(self, block: nn.Module, channels: int) -> None:
        super().__init__()
        self.stem, self.block, self.head = nn.Conv2d(3, 4, 1), block, nn.Linear(channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.stem(x))
        return self.head(h.mean(tuple(range(2, h.dim()))))


@pytest.mark.parametrize(("block", "channels"), [(_Residual, 4), (_Shuffle, 4), (_Flat, 6)])
def test_blocks_keeping_the_channels_first_keep_them_as_units(block, channels):
    torch.manual_seed(0)
    assert unit_effects(_Net(block(), channels).eval(), _x(), "block", target=0).shape == (4, channels)
