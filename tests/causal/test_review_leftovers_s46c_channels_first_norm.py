"""A channels-first block ``[N, C, T]`` that normalises its channels with a LayerNorm written through transposes
(``self.ln(x.transpose(1, 2))``) before its convolutions was read by ``conv_layouts`` with its steps on dimension 1:
the "features-last output read transposed" rule (a Conformer's ``norm(x).transpose(1, 2)``) took the LayerNorm's
output for the input's layout, though it read the input transposed. At a tied length (``C == T``) its map silently
zeroed channels as padding. With the pointwise convolution counted (861c9b0d) the ConvNeXt-like pointwise/depthwise
block lost its tie warning too. A features-last layer that read the input transposed (or such a layer's output) now
tells nothing; the Conformer's block (its norm reading the input as it is) and a Linear before a convolution over the
steps are still read with their steps on dimension 1."""

import torch
from torch import nn

from lightning_causal.causal.structure.layer_activations import conv_layouts
from tests.causal.test_lead_s44_conv_layouts_shapes import _map
from tests.causal.test_leftovers_s46c_pointwise_conformer import TorchaudioConv


class NormPointwise(nn.Module):  # [N, C, T]: LayerNorm over the channels via transposes, pointwise, depthwise, residual
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.ln, self.pw = nn.LayerNorm(d), nn.Conv1d(d, d, 1)
        self.dw = nn.Conv1d(d, d, 3, padding=1, groups=d)

    def forward(self, x):
        return x + self.dw(self.pw(self.ln(x.transpose(1, 2)).transpose(1, 2)).relu())


class NormLinearDepthwise(nn.Module):  # [N, C, T]: the transposed LayerNorm, then a Linear, then the depthwise conv
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.ln, self.fc = nn.LayerNorm(d), nn.Linear(d, d)
        self.dw = nn.Conv1d(d, d, 3, padding=1, groups=d)

    def forward(self, x):
        return x + self.dw(self.fc(self.ln(x.transpose(1, 2))).transpose(1, 2))


class LinearThenConv(nn.Module):  # [N, T, D]: a Linear, a convolution over the steps, a Linear
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.fc1, self.conv, self.fc2 = nn.Linear(d, d), nn.Conv1d(d, d, 3, padding=1), nn.Linear(d, d)

    def forward(self, x):
        return self.fc2(self.conv(self.fc1(x).transpose(1, 2)).transpose(1, 2))


def _read(block: nn.Module) -> dict[str, str]:
    model = nn.Sequential(block.eval())
    with conv_layouts(model, ["0"]) as read, torch.no_grad():
        model(torch.randn(3, 8, 8))
    return read


def test_a_norm_that_read_the_input_transposed_says_no_steps_on_dimension_1():
    assert _read(NormPointwise()) == {}  # was {'0': 'steps'}
    assert _read(NormLinearDepthwise()) == {}  # was {'0': 'steps'}: its Linear read the norm's output
    assert _read(TorchaudioConv()) == {"0": "steps"}  # the norm read the input as it is
    assert _read(LinearThenConv()) == {"0": "steps"}


def test_the_channels_first_block_at_a_tied_length_is_warned_not_silently_misread():
    for make in (NormPointwise, NormLinearDepthwise):
        _tied, said = _map(make, 8, True, 8)
        assert len(said) == 1 and "'block'" in said[0], (make, said)  # was no warning and channels zeroed as padding
