"""20d7d752's ``conv_layouts`` used what a block's convolution read only where the block's output had its input's
shape, and looked for a causal pad of at most 8 steps: a causal convolution that changes the channel count
(``relu(self.conv(x)[..., :T])``, 6 -> 8) and a WaveNet-style residual block (``F.pad(x, (16, 0))``, dilation 8) were read
with their steps on dimension 1 again, their channels zeroed as padding (the map at 8 steps 0.6380 / 0.4529 against
0.7031 / 0.5566 unpadded), and a text-CNN block changing its width got a tie warning it did not need (final read D44 F1).
A block called ``block(x=h)`` recorded nothing (F2). Each block's map at a tied length now equals its map at 12 steps."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import layer_causal_map


class ChanChange(nn.Module):  # a text-CNN block 6 -> 8 wide, [N, T, D] in and out, the conv reading it transposed
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(6, 8, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)


class CausalChan(nn.Module):  # channels first, a causal conv 6 -> 8, an activation after
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(6, 8, 3, padding=2)

    def forward(self, x):
        return F.relu(self.conv(x)[..., :x.shape[-1]])


class WaveNet(nn.Module):  # channels first, residual, a causal pad of 16 steps
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(8, 8, 3, dilation=8)

    def forward(self, x):
        return x + torch.tanh(self.conv(F.pad(x, (16, 0))))


class Model(nn.Module):
    def __init__(self, block: nn.Module, d: int, channels_first: bool, keyword: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.channels_first, self.keyword = channels_first, keyword
        self.emb, self.block, self.mix, self.head = nn.Embedding(10, d), block, nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, ids, attention_mask):
        e = self.emb(ids)
        e = e.transpose(1, 2) if self.channels_first else e
        h = self.block(x=e) if self.keyword else self.block(e)
        h = torch.tanh(self.mix(h.transpose(1, 2) if self.channels_first else h))
        m = attention_mask[..., None].to(h.dtype)
        return self.head((h * m).sum(1) / m.sum(1))


def _map(make, d, channels_first, t, keyword=False):
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([6, 3, 5, 4, 6, 2])
    mask = (torch.arange(t)[None] < lengths[:, None]).long()
    ids = torch.randint(2, 10, (6, 12), generator=g)[:, :t].masked_fill(mask == 0, 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(5)  # the block's weights, the same at both lengths
        lm = layer_causal_map(Model(make(), d, channels_first, keyword).double(), ids, layers=["block", "mix"],
                              baseline=1, additional_forward_args={"attention_mask": mask})
    return lm.response, [str(w.message) for w in caught if "alike" in str(w.message)]


@pytest.mark.parametrize("make, d, channels_first", [(ChanChange, 6, False), (CausalChan, 6, True), (WaveNet, 8, True)])
@pytest.mark.parametrize("keyword", [False, True])
def test_each_blocks_map_at_a_tied_length_equals_its_unpadded_map(make, d, channels_first, keyword):
    tied, said = _map(make, d, channels_first, 8, keyword)
    long, _ = _map(make, d, channels_first, 12, keyword)
    torch.testing.assert_close(tied, long)
    assert not said, said
