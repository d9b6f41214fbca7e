"""The layer map laid a layer's padding on dimension 2 by its module's type (any convolution, channel normalisation or
pool), so ``nn.AvgPool1d`` over each token's features (``[N, T, D]`` -> ``[N, T, D / 2]``) had its padded positions
counted, the map moving with the length the probe is padded to, and a causal-convolution module of one's own returning
``conv(x)[..., :T]`` (``[N, C, T]``, the way out of the Conv1d warning) was read with its steps on dimension 1. The
steps now lie where the shape says (dimension 1 or 2, whichever alone holds the input's ``T`` to ``T + 4`` steps), the
module breaking a tie only."""
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map

C = 16


class _Pooled(nn.Module):
    """Token ids -> features -> each token attends to the real tokens' mean -> AvgPool1d over its features."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.mix = nn.Embedding(10, 6), nn.Linear(6, 6)
        self.pool, self.out, self.head = nn.AvgPool1d(2), nn.Linear(3, 6), nn.Linear(6, 2)

    def forward(self, ids, attention_mask):
        h = torch.tanh(self.mix(self.emb(ids)))
        m = attention_mask[..., None].to(h.dtype)
        h = h + (h * m).sum(1, keepdim=True) / m.sum(1, keepdim=True)  # padded positions move with real ones
        h = torch.tanh(self.out(self.pool(h)))
        return self.head(h[torch.arange(len(ids)), attention_mask.sum(1) - 1])


class _CausalConv(nn.Module):
    def __init__(self, channels_last: bool) -> None:
        super().__init__()
        self.conv, self.channels_last = nn.Conv1d(C, C, 4, padding=3, groups=C), channels_last

    def forward(self, x):  # x [N, C, T]
        y = self.conv(x)[..., : x.shape[-1]]
        return y.transpose(1, 2) if self.channels_last else y


class _Convolved(nn.Module):
    """Token ids -> a causal depthwise convolution module returning [N, C, T] (or [N, T, C]) -> linear -> the last real
    token's logits."""

    def __init__(self, channels_last: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.cconv = nn.Embedding(10, C), _CausalConv(channels_last)
        self.out, self.head = nn.Linear(C, C), nn.Linear(C, 2)

    def forward(self, ids, attention_mask):
        h = self.cconv(self.emb(ids).transpose(1, 2))
        h = torch.tanh(h if self.cconv.channels_last else h.transpose(1, 2))
        h = torch.tanh(self.out(h))
        return self.head(h[torch.arange(len(ids)), attention_mask.sum(1) - 1])


def _map(model, layers, t):
    lengths = torch.tensor([5, 3, 5, 4, 6, 2])
    ids = torch.zeros(6, t, dtype=torch.long)
    ids[:, :6] = torch.randint(2, 10, (6, 6), generator=torch.Generator().manual_seed(1))
    real = torch.arange(t)[None] < lengths[:, None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = layer_causal_map(model.double(), ids.masked_fill(~real, 0), layers=layers, baseline=1,
                              additional_forward_args={"attention_mask": real.long()})
    return lm.response, [str(w.message) for w in caught]


@pytest.mark.parametrize("t", [8, 10])
def test_a_pool_over_token_features_keeps_its_positions_on_dimension_1(t):
    short, said = _map(_Pooled(), ["pool", "out"], 6)
    long, said_long = _map(_Pooled(), ["pool", "out"], t)
    torch.testing.assert_close(long, short, rtol=0, atol=1e-12)
    assert not said + said_long


@pytest.mark.parametrize("t", [6, 8, 10])
def test_a_convolution_module_returning_channels_first_has_its_steps_on_dimension_2(t):
    got, said = _map(_Convolved(), ["cconv", "out"], t)
    ref, _ = _map(_Convolved(channels_last=True), ["cconv", "out"], 6)  # the same values laid [N, T, C]
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    assert not said
