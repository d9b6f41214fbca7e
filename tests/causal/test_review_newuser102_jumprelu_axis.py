"""A JumpReLU SAE (a learned threshold per latent, an nn.Parameter, as Gemma Scope's) on a sequence `[N, T, K]`: its
latents' site, an `nn.Identity` after the JumpReLU module or that module itself, took the default units on dimension 1
silently, the T positions, as the walk back to the layer that gives the layout (the encoder) stopped at a module with
parameters (04cab1b9 covered a functional ReLU/TopK only). A leaf that keeps its input's shape and holds only 1-D
parameters as wide as the last dimension reads its features last: the default is refused with `unit_dim=-1` as the way
out. A PReLU of one weight per channel after a Conv1d (as wide as dimension 1) keeps its channels (the default)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class JumpReLU(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.threshold = nn.Parameter(torch.full((k,), 0.1))

    def forward(self, a):
        return a * (a > self.threshold)


class SequenceJumpSAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.enc, self.jump, self.dec = nn.Embedding(10, 8), nn.Linear(8, 16), JumpReLU(16), nn.Linear(16, 8)
        self.latents, self.head = nn.Identity(), nn.Linear(8, 3)

    def forward(self, ids):
        h = self.emb(ids)
        z = self.jump(self.enc(h))  # [N, T, 16]
        error = h - self.dec(z)
        return self.head((self.dec(self.latents(z)) + error).mean(1))


class ConvPReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act, self.site, self.head = nn.Conv1d(2, 4, 3, padding=1), nn.PReLU(4), nn.Identity(), nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.site(self.act(self.conv(x))).mean(2))


IDS = torch.randint(0, 10, (4, 6), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("site", ["latents", "jump"])
def test_jumprelu_latents_refuse_the_default_axis(site):
    torch.manual_seed(0)
    model = SequenceJumpSAE().eval()
    with pytest.raises(ValueError, match=r"has its features last .* Pass `unit_dim=-1`"):
        unit_effects(model, IDS, site)
    assert unit_effects(model, IDS, site, unit_dim=-1).shape == (4, 16)  # the latents, not the T = 6 positions


def test_a_per_channel_prelu_after_a_convolution_keeps_channels_first():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 7, generator=torch.Generator().manual_seed(1))
    assert unit_effects(ConvPReLU().eval(), x, "site").shape == (4, 4)
