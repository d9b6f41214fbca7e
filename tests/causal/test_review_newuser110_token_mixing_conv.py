"""effc7091 laid the padding of every convolution's output on its dimension 2 (a Mamba block's depthwise ``Conv1d``
over ``[N, D, T]``); a gMLP's spatial gating unit mixes the positions with a pointwise ``nn.Conv1d(T, T, 1)`` on
``[N, T, D]`` (lucidrains' g-mlp-pytorch), whose dimension 1 holds the positions and dimension 2 the features, so its
padded positions were counted in silence: the layer map's response of the convolution moved from 0.60 to 0.52, where
the same mixing written as a module of one's own (einsum) kept 0.60. Such a convolution keeps its steps on dimension 1."""
import warnings

import torch
from torch import nn

from lightning_causal.causal import layer_causal_map

T, D = 8, 6


class _Mix(nn.Module):
    """The convolution's mixing of the positions written by hand: ``out[n, s, d] = sum_t w[s, t] x[n, t, d] + b[s]``."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        self.w, self.b = conv.weight, conv.bias

    def forward(self, x):
        return torch.einsum("st,ntd->nsd", self.w[..., 0], x) + self.b[:, None]


class _GMLP(nn.Module):
    """ids -> embedding [N, T, D] -> spatial gating h * tanh(proj(h)) -> linear -> the last real token's logits."""

    def __init__(self, own: bool):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.proj = nn.Embedding(10, D), nn.Conv1d(T, T, 1)
        if own:
            self.proj = _Mix(self.proj)
        self.out, self.head = nn.Linear(D, D), nn.Linear(D, 2)

    def forward(self, ids, attention_mask):
        h = self.emb(ids)
        h = torch.tanh(self.out(h * torch.tanh(self.proj(h))))
        return self.head(h[torch.arange(len(ids)), attention_mask.sum(1) - 1])


def test_a_convolution_mixing_positions_keeps_them_on_dimension_1():
    lengths = torch.tensor([8, 3, 5, 4, 6, 2])
    real = torch.arange(T)[None] < lengths[:, None]
    ids = torch.randint(2, 10, (6, T), generator=torch.Generator().manual_seed(1)).masked_fill(~real, 0)
    maps = []
    for own in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing to warn of: the positions are the input's
            maps.append(layer_causal_map(_GMLP(own).double(), ids, layers=["proj", "out"], baseline=1,
                                         additional_forward_args={"attention_mask": real.long()}))
    torch.testing.assert_close(maps[0].response, maps[1].response)
    torch.testing.assert_close(maps[0].cka, maps[1].cka, equal_nan=True)
