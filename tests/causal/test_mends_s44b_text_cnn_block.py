"""A text-CNN block (``[N, T, D]`` in and out, ``relu(self.conv(x.transpose(1, 2))).transpose(1, 2)``) holds a
``Conv1d`` of ``D`` channels and no ``Linear``, as a causal convolution module of one's own (``[N, C, T]``) does; where
``D`` fits the probe's ``T`` (``D == T`` to ``T + 4``) their shapes are the same, and 54c801ee read the block's steps on
dimension 2: its channels were zeroed as padding, silently (0.1980 vs 0.3316 at 8 steps). The clean pass now records how
the convolution reads the block's input (transposed: steps on dimension 1; as it is: dimension 2), and where nothing
tells, the steps stay on dimension 1 with the tie warning."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal.structure.layer_activations import conv_layouts, steps_layout
from tests.causal.test_leftovers_s44b_causal_conv_module import (
    _map as _probe_map,  # the map of 6 token sequences (lengths 6, 3, 5, 4, 6, 2) padded to t
)


class TokenConv(nn.Module):  # [N, T, D] in and out, the conv over the steps, no Linear inside
    def __init__(self, d: int, pad: bool = False):
        super().__init__()
        self.pad = pad
        self.conv = nn.Conv1d(d, d, 3, padding=0 if pad else 1)

    def forward(self, x):
        x = x.transpose(1, 2)
        return F.relu(self.conv(F.pad(x, (1, 1)) if self.pad else x)).transpose(1, 2)


class Normed(TokenConv):  # the conv reads a tensor of its own (a normalisation first): nothing tells
    def forward(self, x):
        return F.relu(self.conv(F.layer_norm(x, x.shape[-1:]).transpose(1, 2))).transpose(1, 2)


class TextCNN(nn.Module):
    def __init__(self, block=TokenConv, d: int = 8, **kw):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.block, self.mix, self.head = nn.Embedding(10, d), block(d, **kw), nn.Linear(d, d), nn.Linear(d, 2)

    def forward(self, ids, attention_mask):
        h = torch.tanh(self.mix(self.block(self.emb(ids))))
        m = attention_mask[..., None].to(h.dtype)
        return self.head((h * m).sum(1) / m.sum(1))


def _map(model, t):
    return _probe_map(model, t, layers=("block", "mix"))


@pytest.mark.parametrize("pad", [False, True])  # the transposed input read as a view, or padded (a copy: by values)
@pytest.mark.parametrize("t", [7, 8])  # D = T + 1, D == T: both fit the steps (at 6 the conv reads no pad token)
def test_a_text_cnn_blocks_map_does_not_depend_on_the_padded_length(t, pad):
    padded, said = _map(TextCNN(pad=pad), t)
    long, said_long = _map(TextCNN(pad=pad), 12)  # D < T: the steps on dimension 1 by shape alone
    torch.testing.assert_close(padded.response, long.response)  # was 0.1980 vs 0.3316 at t = 8: channels zeroed
    assert not [s for s in said + said_long if "alike" in s or "more positions than" in s], said


def test_hand_check_of_the_block_read_on_dimension_1():
    model = TextCNN().double()
    block = model.block
    x = torch.randn(3, 8, 8, dtype=torch.double)  # [N, T, D], D == T
    with conv_layouts(model, ["block"]) as layouts:
        h = block(x)
    assert layouts == {"block": "steps"}
    assert steps_layout(model, {"block": h}, 8, layouts)[0] == {}  # steps on dimension 1
    assert not block._forward_hooks and not block._forward_pre_hooks and not block.conv._forward_hooks


def test_a_block_whose_reading_nothing_tells_is_warned_of_and_read_on_dimension_1():
    padded, said = _map(TextCNN(Normed), 8)
    long, _ = _map(TextCNN(Normed), 12)
    torch.testing.assert_close(padded.response, long.response)  # dimension 1: right for this block
    tied = [s for s in said if "dimensions 1 and 2 alike" in s]
    assert len(tied) == 1 and "'block' [N, 8, 8]" in tied[0] and "`layers=`" in tied[0], said


def test_hooks_removed_on_an_exception():
    model = TextCNN()
    with pytest.raises(RuntimeError, match="boom"), conv_layouts(model, ["block"]):
        raise RuntimeError("boom")
    assert not model.block._forward_hooks and not model.block._forward_pre_hooks and not model.block.conv._forward_hooks
