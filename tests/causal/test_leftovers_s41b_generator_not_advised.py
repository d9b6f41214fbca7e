"""The layer map's warning for layers of yours applying their weights in functional code advised `layers=[...]` with a
generator of yours run on one row (a hypernetwork's `gen(self.z)`, a `_DeltaLinear` of [1, 8]) in it, and following the
advice raised ValueError ('gen' returned [1, 8] for 12 samples). Such a module is left out of the advice and named in
meta['left_out'] as a default layer of one row is."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.layer_activations import BROADCAST
from tests.causal.test_mends_s40c_advised_layers import (
    _DeltaLinear,  # a layer of yours in functional code
)


class _GenHead(nn.Module):  # a gate generated from a parameter (one row for all samples), then a head
    def __init__(self, body: bool) -> None:
        super().__init__()
        self.z = nn.Parameter(torch.randn(1, 4))
        self.gen = _DeltaLinear(4, 8)
        self.body = _DeltaLinear(8, 8) if body else nn.Identity()
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)) * torch.sigmoid(self.gen(self.z)))


def advised_layers(model: nn.Module, x: torch.Tensor) -> tuple[object, list]:
    """The layer map of ``model`` on ``x`` and the ``layers=`` lists its warnings advise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = layer_causal_map(model, x)
    return result, [eval(found.group(1)) for w in caught if (found := re.search(r"`layers=(\[.*?\])`", str(w.message)))]


@pytest.mark.parametrize(("body", "advised"), [(False, []), (True, [["body", "head"]])])
def test_a_generator_of_one_row_is_not_advised(body: bool, advised: list) -> None:
    torch.manual_seed(0)
    model, x = _GenHead(body).eval(), torch.randn(12, 8, generator=torch.Generator().manual_seed(0))
    result, said = advised_layers(model, x)
    assert result.meta["left_out"]["gen"] == BROADCAST
    assert said == advised
    for layers in said:  # the advice maps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert list(layer_causal_map(model, x, layers=layers).layers) == layers
