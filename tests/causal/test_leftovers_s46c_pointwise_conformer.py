"""torchaudio's Conformer convolution module (LayerNorm, then ``Conv1d(d, 2d, 1)`` reading ``norm(x).transpose(1, 2)``,
GLU, depthwise ``Conv1d``, BatchNorm, SiLU, ``Conv1d(d, d, 1)``, transposed back) at a probe length ``T == D`` got the
tie warning although its map was right: ``conv_layouts`` left pointwise convolutions out, and the depthwise one reads
the GLU's output, which tells nothing (review_leftovers_s45b 4.1). Beside a convolution over the steps a pointwise one
now tells. Both sides of the rule: the torchaudio block (a view and a copy, with a residual) and a channels-first
pointwise/depthwise block are read without a warning, each map equal to its map at 12 steps (no tie); a block whose
convolution reads a functional layer norm's new tensor still records nothing and is still warned."""

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal.structure.layer_activations import conv_layouts
from tests.causal.test_lead_s44_conv_layouts_shapes import _map


class TorchaudioConv(nn.Module):  # torchaudio.models.conformer's _ConvolutionModule, [N, T, D] in and out
    def __init__(self, d: int = 8, copy: bool = False, residual: bool = False) -> None:
        super().__init__()
        self.copy, self.residual = copy, residual
        self.layer_norm = nn.LayerNorm(d)
        self.sequential = nn.Sequential(nn.Conv1d(d, 2 * d, 1), nn.GLU(dim=1), nn.Conv1d(d, d, 3, padding=1, groups=d),
                                        nn.BatchNorm1d(d), nn.SiLU(), nn.Conv1d(d, d, 1), nn.Dropout(0.0))

    def forward(self, x):
        h = self.layer_norm(x).transpose(1, 2)
        h = self.sequential(h.contiguous() if self.copy else h).transpose(1, 2)
        return x + h if self.residual else h


class MobileChannelsFirst(nn.Module):  # [N, C, T]: pointwise, depthwise, pointwise, residual
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.a, self.dw, self.b = nn.Conv1d(d, d, 1), nn.Conv1d(d, d, 3, padding=1, groups=d), nn.Conv1d(d, d, 1)

    def forward(self, x):
        return x + self.b(F.relu(self.dw(F.relu(self.a(x)))))


class FunctionalNorm(nn.Module):  # the convolution reads a new tensor: nothing tells, the tie stays warned
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv1d(d, d, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv(F.layer_norm(x, (x.shape[-1],)).transpose(1, 2))).transpose(1, 2)


def test_the_torchaudio_block_is_read_with_its_steps_on_dimension_1():
    for kwargs in ({}, {"copy": True}, {"residual": True}):
        model = nn.Sequential(TorchaudioConv(**kwargs).eval())
        with conv_layouts(model, ["0"]) as read:
            model(torch.randn(3, 8, 8))
        assert read == {"0": "steps"}, kwargs  # was {}: nothing recorded


def test_maps_at_a_tied_length_equal_the_unpadded_maps_without_a_warning():
    cases = [(lambda: TorchaudioConv(), False), (lambda: TorchaudioConv(copy=True), False),
             (lambda: TorchaudioConv(residual=True), False), (MobileChannelsFirst, True)]
    for make, channels_first in cases:
        tied, said = _map(make, 8, channels_first, 8)
        long, _ = _map(make, 8, channels_first, 12)
        torch.testing.assert_close(tied, long)
        assert not said, (make, said)


def test_a_block_whose_convolution_reads_a_new_tensor_is_still_warned():
    model = nn.Sequential(FunctionalNorm())
    with conv_layouts(model, ["0"]) as read:
        model(torch.randn(3, 8, 8))
    assert read == {}
    tied, said = _map(FunctionalNorm, 8, False, 8)
    torch.testing.assert_close(tied, _map(FunctionalNorm, 8, False, 12)[0])
    assert len(said) == 1
