"""The layer map's steps dimension where a module declares its layout (final read D, finding 1).

a563b8b8 read the steps dimension from the shape first, so a ``Linear`` whose ``out_features`` happened to lie in
``T .. T + 4`` (a learned prefix of tokens ``[N, T + 6, D]``, or a ``Linear`` after a strided convolution ``[N, T / 2,
D]``) had its features zeroed as padded positions, silently, and a strided ``Conv1d`` whose ``out_channels`` equalled
``T`` had its channels zeroed again. The figures are those of 1c1d0b7b (``out``) and a563b8b8's parent (``conv``).
"""
import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.layer_activations import steps_layout

T = 8


class _Prefixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.prefix = nn.Embedding(10, T), nn.Parameter(torch.randn(6, T))
        self.out, self.head = nn.Linear(T, T), nn.Linear(T, 2)

    def forward(self, ids, attention_mask):
        h = torch.cat([self.prefix.expand(len(ids), 6, T), self.emb(ids)], 1)
        h = torch.tanh(self.out(h + h.mean(1, keepdim=True)))
        return self.head(h[:, :6].mean(1) + h[torch.arange(len(ids)), 6 + attention_mask.sum(1) - 1])


class _Strided(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.conv = nn.Embedding(10, 6), nn.Conv1d(6, T, 2, stride=2)
        self.out, self.head = nn.Linear(T, T), nn.Linear(T, 2)

    def forward(self, ids, attention_mask):
        h = self.emb(ids) * attention_mask[..., None]
        h = torch.tanh(self.conv(h.transpose(1, 2)))
        return self.head(torch.tanh(self.out(h.transpose(1, 2))).mean(1))


def _probe():
    lengths = torch.tensor([5, 3, 5, 4, 6, 2])
    ids = torch.zeros(6, T, dtype=torch.long)
    ids[:, :6] = torch.randint(2, 10, (6, 6), generator=torch.Generator().manual_seed(1))
    real = torch.arange(T)[None] < lengths[:, None]
    return ids.masked_fill(~real, 0), real.long()


def test_declared_widths_decide_before_the_shape():
    model = nn.Sequential(nn.Linear(T, T), nn.Conv1d(6, T, 2, stride=2))
    acts = {"0": torch.ones(2, 4, T), "1": torch.ones(2, T, 4)}
    assert steps_layout(model, acts, T)[0] == {"1": 2}


@pytest.mark.parametrize(("model", "layers", "expected"), [
    (_Prefixed, ["out"], [0.3110797118493221]),
    (_Strided, ["conv", "out"], [0.8429309119175896, 0.5094286506956904]),
])
def test_a_declared_width_of_the_input_s_length_is_not_read_as_steps(model, layers, expected):
    ids, mask = _probe()
    result = layer_causal_map(model().double(), ids, layers=layers, baseline=1,
                              additional_forward_args={"attention_mask": mask})
    assert result.response.flatten().tolist() == pytest.approx(expected, abs=1e-9)
