"""A causal convolution module of one's own (``self.conv(x)[..., :T]``, ``[N, C, T]``) declares no layout and is no
library type: where ``C`` fits the input's ``T`` as well as dimension 2 does (``C == T``, or ``T`` a little under ``C``),
the layer map laid the padding on its channels (zeroed silently at ``C == T``; warned with the ``[CLS]`` advice, its padded
steps counted, at ``T < C <= T + 4``). It holds a ``Conv1d`` of ``C`` channels and no features-last layer as wide as
its last dimension: its steps lie on dimension 2, and its map no longer depends on the length the probe is padded to."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.layer_activations import conv_layouts, steps_layout
from tests.causal.test_trial_newuser110_conv_steps_padding import (
    _probe,  # 6 token sequences padded to t
)


class CausalConv(nn.Module):
    def __init__(self, channels: int, k: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, k, groups=channels, padding=k - 1)

    def forward(self, x):
        return self.conv(x)[..., : x.shape[-1]]


class ConvTokens(nn.Module):
    def __init__(self, channels: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.causal = nn.Embedding(10, channels), CausalConv(channels)
        self.mix, self.head = nn.Linear(channels, channels), nn.Linear(channels, 2)

    def forward(self, ids, attention_mask):
        h = self.causal(self.emb(ids).transpose(1, 2))
        h = torch.tanh(self.mix(h.transpose(1, 2)))
        return self.head(h[torch.arange(len(ids)), attention_mask.sum(1) - 1])


class ConvThenLinear(nn.Module):  # a block of one's own laid [N, T, D]: its Linear is as wide as the last dimension
    def __init__(self, d: int):
        super().__init__()
        self.conv, self.proj = nn.Conv1d(d, d, 3, padding=1), nn.Linear(d, d)

    def forward(self, x):
        return self.proj(self.conv(x.transpose(1, 2)).transpose(1, 2))


def test_steps_of_a_convolution_module_of_ones_own():
    model = nn.ModuleDict({"same": CausalConv(8), "more": CausalConv(10), "block": ConvThenLinear(8)})
    with conv_layouts(model, list(model)) as layouts:  # what the clean pass records: the convolution reads x as it is
        acts = {"same": model["same"](torch.ones(2, 8, 8)), "more": model["more"](torch.ones(2, 10, 8)),
                "block": model["block"](torch.ones(2, 8, 8))}
    assert steps_layout(model, acts, 8, layouts)[0] == {"same": 2, "more": 2}  # was {}: every one on dimension 1
    assert steps_layout(model, acts, 8)[0] == {}  # nothing recorded: dimension 1, warned of (tied)
    assert steps_layout(model, acts, 8)[1] == ["same", "more", "block"]
    assert steps_layout(model, acts, 8, layouts)[1] == []  # block: its conv reads x transposed


def _map(model, t, layers=("causal", "mix")):
    ids, mask = _probe(t)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = layer_causal_map(model.double(), ids, layers=list(layers), baseline=1,
                              additional_forward_args={"attention_mask": mask})
    return lm, [str(w.message) for w in caught]


@pytest.mark.parametrize("t", [6, 8])  # T a little under C = 8 (warned, steps counted); C == T (channels zeroed)
def test_the_map_does_not_depend_on_the_padded_length(t):
    model = ConvTokens()
    padded, said = _map(model, t)
    long, said_long = _map(model, 12)  # C < T: the steps on dimension 2 by shape alone
    torch.testing.assert_close(padded.response, long.response)
    assert not [s for s in said + said_long if "more positions than" in s]


class ActAfterConv(ConvTokens):  # a Conv1d then an activation module: the activation says nothing of its layout
    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv1d(8, 8, 3), nn.Tanh()

    def forward(self, ids, attention_mask):
        h = self.act(self.conv(F.pad(self.emb(ids).transpose(1, 2), (2, 0))))
        h = torch.tanh(self.mix(h.transpose(1, 2)))
        return self.head(h[torch.arange(len(ids)), attention_mask.sum(1) - 1])


def test_a_layer_whose_layout_nothing_tells_is_warned_of_where_padded():
    ids, mask = _probe(8)  # C == T: the activation's [N, 8, 8] read on dimension 1 by default
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer_causal_map(ActAfterConv().double(), ids, layers=["act", "mix"], baseline=1,
                         additional_forward_args={"attention_mask": mask})
    said = [str(w.message) for w in caught if "dimensions 1 and 2 alike" in str(w.message)]
    assert len(said) == 1 and "'act' [N, 8, 8]" in said[0] and "'mix'" not in said[0] and "`layers=`" in said[0], said
    _, quiet = _map(ConvTokens(), 8)  # the module of one's own that holds the convolution: told, not warned
    assert not [s for s in quiet if "alike" in s]
