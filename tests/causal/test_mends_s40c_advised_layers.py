"""A final read of 19449138: the layer map's warning for a layer of the user's own applying its weights in functional
code advises `layers=[...]`, the default layers with that module in forward order. The list still held default layers
the map itself leaves out for not holding the samples on dimension 0 (GPT-2's `wpe(arange(T)[None])`, a hypernetwork's
generator run on one row), so following the advice raised ValueError naming them. The advised list now holds only the
layers the map keeps, and maps with no error."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import layer_causal_map


class _DeltaLinear(nn.Module):  # a ROME-style edit kept as a delta beside a child's weight
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.lin = nn.Linear(i, o)
        self.register_buffer("delta", torch.randn(o, i) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.lin.weight + self.delta, self.lin.bias)


class _TinyGPT(nn.Module):  # GPT-2's position embedding: wpe(position_ids [1, T]), one row for all samples
    def __init__(self) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(20, 16), nn.Embedding(10, 16)
        self.fc, self.head = _DeltaLinear(16, 16), nn.Linear(16, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.wte(ids) + self.wpe(torch.arange(ids.shape[1])[None])
        return self.head(torch.relu(self.fc(h)).mean(1))


class _Hyper(nn.Module):  # a generator making one gate for the batch from a parameter (one row), then a head
    def __init__(self) -> None:
        super().__init__()
        self.d, self.z = _DeltaLinear(8, 16), nn.Parameter(torch.randn(1, 4))
        self.gen, self.head = nn.Linear(4, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.d(x)) * torch.sigmoid(self.gen(self.z)))


@pytest.mark.parametrize(("model", "x", "kwargs", "dropped", "kept"), [
    (_TinyGPT, lambda g: torch.randint(0, 20, (12, 6), generator=g), {"baseline": 0}, "wpe", ["wte", "fc", "head"]),
    (_Hyper, lambda g: torch.randn(12, 8, generator=g), {}, "gen", ["d", "head"]),
])
def test_the_advised_layers_map(model, x, kwargs, dropped, kept) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    m, xs = model().eval(), x(torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = layer_causal_map(m, xs, **kwargs)
    assert dropped in result.meta["left_out"]  # the map itself leaves it out
    advised = [eval(found.group(1)) for w in caught if (found := re.search(r"`layers=(\[.*?\])`", str(w.message)))]
    assert advised == [kept]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        followed = layer_causal_map(m, xs, layers=advised[0], **kwargs)
    assert list(followed.layers) == kept
