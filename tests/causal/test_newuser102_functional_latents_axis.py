"""An SAE's latents computed in functional code between its encoder and their site, `site(torch.relu(encoder(h)))`, on a
sequence `[N, T, K]` or on conv features laid out channels last `[N, H, W, K]`: the default units (dimension 1) were
taken silently as the positions T (the rows H), as no module returned the site's input, so the walk back to the layer
that produced it stopped. The layout is now read from the last module output of the input's shape before it (the
encoder's): the default is refused with `unit_dim=-1` as the way out. A functional ReLU after a convolution keeps its
channels on dimension 1 (the default, accepted)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class SequenceSAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.enc, self.dec = nn.Embedding(10, 8), nn.Linear(8, 16), nn.Linear(16, 8)
        self.latents, self.head = nn.Identity(), nn.Linear(8, 3)

    def forward(self, ids):
        h = self.emb(ids)
        z = torch.relu(self.enc(h))  # [N, T, K], from functional code
        error = h - self.dec(z)
        return self.head((self.dec(self.latents(z)) + error).mean(1))


class ChannelsLastSAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.enc, self.dec = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4, 8), nn.Linear(8, 4)
        self.latents, self.head = nn.Identity(), nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        h = self.conv(x).permute(0, 2, 3, 1)  # [N, H, W, C]
        z = torch.relu(self.enc(h))  # [N, H, W, K]
        out = self.dec(self.latents(z)) + h - self.dec(z)
        return self.head(out.permute(0, 3, 1, 2).flatten(1))


class ConvSite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.site, self.head = nn.Conv2d(1, 4, 3, padding=1), nn.Identity(), nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.head(self.site(torch.relu(self.conv(x))).flatten(1))


@pytest.mark.parametrize(("model", "x", "units"), [
    (SequenceSAE(), torch.randint(0, 10, (4, 6)), 16),  # T = 6 positions were taken as the units
    (ChannelsLastSAE(), torch.randn(4, 1, 6, 6), 8),  # H = 6 rows were taken as the units
])
def test_latents_from_functional_code_refuse_the_default_axis(model, x, units):
    with pytest.raises(ValueError, match=r"has its features last .* Pass `unit_dim=-1`"):
        unit_effects(model.eval(), x, "latents")
    assert unit_effects(model.eval(), x, "latents", unit_dim=-1).shape == (4, units)


def test_a_functional_relu_after_a_convolution_keeps_channels_first():
    assert unit_effects(ConvSite().eval(), torch.randn(4, 1, 6, 6), "site").shape == (4, 4)
