"""The layer map laid the input's padding [N, T] on dimension 1 of every layer's output, so a channels-first
``nn.Conv1d`` output ``[N, C, T]`` inside a token model (a Mamba block's depthwise causal convolution) had its channels
zeroed where the samples' positions are padding when ``C == T`` (silently), and, when ``T < C <= T + 4``, was warned of
as holding "more positions than the input" while its padded steps counted. Its steps lie on dimension 2: the map of
such a model no longer depends on the length the probe is padded to, and the warning names the steps of a convolution
that returns more of them than the input (a causal ``Conv1d`` padded by ``k - 1`` on both sides)."""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import layer_causal_map


class _ConvTokens(nn.Module):
    """Token ids -> embedding -> depthwise causal Conv1d over the steps (channels first) -> linear -> the last real
    token's logits. ``same=True``: the convolution pads ``k - 1`` on both sides and the model cuts its last steps."""

    def __init__(self, channels: int = 8, k: int = 3, same: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.k, self.same = k, same
        self.emb = nn.Embedding(10, channels)
        self.conv = nn.Conv1d(channels, channels, k, groups=channels, padding=k - 1 if same else 0)
        self.mix = nn.Linear(channels, channels)
        self.head = nn.Linear(channels, 2)

    def forward(self, ids, attention_mask):
        t = ids.shape[1]
        h = self.emb(ids).transpose(1, 2)
        h = self.conv(h)[..., :t] if self.same else self.conv(F.pad(h, (self.k - 1, 0)))
        h = torch.tanh(self.mix(h.transpose(1, 2)))
        return self.head(h[torch.arange(len(ids)), attention_mask.sum(1) - 1])


def _probe(t: int):
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([6, 3, 5, 4, 6, 2])
    ids = torch.randint(2, 10, (6, 6), generator=g)
    real = torch.arange(6)[None] < lengths[:, None]
    ids = F.pad(ids.masked_fill(~real, 0), (0, t - 6))
    return ids, (torch.arange(t)[None] < lengths[:, None]).long()


def _map(model, t):
    ids, mask = _probe(t)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = layer_causal_map(model.double(), ids, layers=["conv", "mix"], baseline=1,
                              additional_forward_args={"attention_mask": mask})
    return lm, [str(w.message) for w in caught]


@pytest.mark.parametrize("t", [8, 10])  # C == T (channels were zeroed as positions); T < C (warned, steps counted)
def test_conv_steps_padded_as_the_input(t):
    model = _ConvTokens()
    short, said_short = _map(model, 6)  # C = 8 > T = 6: before, warned as 2 positions more and its padding counted
    long, said_long = _map(model, t)
    torch.testing.assert_close(long.response, short.response)
    assert not [s for s in said_short + said_long if "more positions than" in s]


def test_conv_of_more_steps_than_the_input_is_named():
    _, said = _map(_ConvTokens(same=True), 6)  # the conv's own output: [N, 8, 6 + 2]
    said = [s for s in said if "'conv'" in s and "more" in s]
    assert len(said) == 1 and "[N, 8, 8]" in said[0] and "steps" in said[0] and "[..., :T]" in said[0], said
