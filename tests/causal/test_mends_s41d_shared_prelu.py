"""PyTorch's default `nn.PReLU()` holds one shared slope (weight [1]), which is "1-D and as wide as the last dimension"
wherever that dimension is 1: a 1-D CNN whose convolution leaves length 1 had its default units (the 8 channels)
refused as features-last, and the refusal's advice, `unit_dim=-1`, gave one unit, the length-1 axis (final_read_B F2).
A parameter of one entry says nothing of the layout: the channels stay the default units."""

import torch
from torch import nn

from lightning_causal.causal import unit_effects


def test_a_shared_prelu_on_length_one_keeps_the_channels():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(4, 8, 5), nn.PReLU(), nn.Flatten(), nn.Linear(8, 2)).eval()
    x = torch.randn(16, 4, 5, generator=torch.Generator().manual_seed(1))  # the convolution's output: [16, 8, 1]
    effects = unit_effects(model, x, "1", target=0)
    assert effects.shape == (16, 8)
    with torch.no_grad():  # channel 3 zeroed by hand: the exact effect f(x) - f(x | do(h_3 := 0))
        h = model[1](model[0](x))
        cut = h.clone()
        cut[:, 3] = 0
        expected = model[3](h.flatten(1))[:, 0] - model[3](cut.flatten(1))[:, 0]
    torch.testing.assert_close(effects[:, 3], expected, rtol=1e-5, atol=1e-6)
