"""A Conformer-like block (LayerNorm, then a depthwise Conv1d over the steps between transposes, then a Linear, with a
residual; ``[N, T, D]`` in and out) at a probe length ``T == D`` got a tie warning whose advice did not apply (its answer
was right): its convolution reads the LayerNorm's output transposed, not its input, so ``conv_layouts`` recorded
nothing (session 44, left). A convolution that reads a features-last layer's output transposed now tells: steps on
dimension 1, no warning; the map at the tied length equals the map at 12 steps (no tie)."""

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal.structure.layer_activations import conv_layouts
from tests.causal.test_lead_s44_conv_layouts_shapes import _map


class Conformer(nn.Module):
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.norm, self.conv, self.proj = nn.LayerNorm(d), nn.Conv1d(d, d, 3, padding=1, groups=d), nn.Linear(d, d)

    def forward(self, x):
        h = self.conv(self.norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.proj(F.silu(h))


class ConformerCopied(Conformer):  # the transposed norm made contiguous: read by values
    def forward(self, x):
        h = self.conv(self.norm(x).transpose(1, 2).contiguous()).transpose(1, 2)
        return x + self.proj(F.silu(h))


def test_the_block_is_read_with_its_steps_on_dimension_1():
    for make in (Conformer, ConformerCopied):
        model = nn.Sequential(make())
        with conv_layouts(model, ["0"]) as read:
            model(torch.randn(3, 8, 8))
        assert read == {"0": "steps"}, make  # was {}: nothing recorded, the tie warned


def test_the_map_at_a_tied_length_equals_the_unpadded_map_without_a_warning():
    for make in (Conformer, ConformerCopied):
        tied, said = _map(make, 8, False, 8)
        long, _ = _map(make, 8, False, 12)
        torch.testing.assert_close(tied, long)
        assert not said, said  # was the tie warning, whose advice named a module of one's own
