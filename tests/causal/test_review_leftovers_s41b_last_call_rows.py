"""A layer of yours in functional code that runs twice per pass, once on a learned query of one row and once on the
samples, is read by the map at its last call: the functional-layers advice keeps it where that call holds the samples
(and it maps), and leaves it out, named as one row for all samples, where that call holds one row (naming it fails).
57137d93 read its rows at its first call: the first model's layer was left out of the advice, and the second's advised,
which the map then refused."""

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


class _SharedProj(nn.Module):
    def __init__(self, samples_last: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.q = nn.Parameter(torch.randn(1, 8))
        self.body, self.proj, self.head = _DeltaLinear(8, 8), _DeltaLinear(8, 8), nn.Linear(8, 3)
        self.samples_last = samples_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.body(x))
        if self.samples_last:  # the query's call first, the samples' last
            g = torch.sigmoid(self.proj(self.q))
            return self.head(self.proj(h) * g)
        p = self.proj(h)  # the samples' call first, the query's last
        return self.head(p * torch.sigmoid(self.proj(self.q)))


def _advised(model: nn.Module, x: torch.Tensor) -> tuple[list, dict]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = layer_causal_map(model, x)
    said = [eval(found.group(1)) for w in caught if (found := re.search(r"`layers=(\[.*?\])`", str(w.message)))]
    return said, result.meta["left_out"]


@pytest.mark.parametrize("samples_last", [True, False])
def test_the_advice_reads_a_layer_at_its_last_call(samples_last: bool) -> None:
    model, x = _SharedProj(samples_last).eval(), torch.randn(12, 8, generator=torch.Generator().manual_seed(0))
    said, left_out = _advised(model, x)
    assert len(said) == 1
    assert ("proj" in said[0]) is samples_last
    assert (left_out["proj"] == BROADCAST) is not samples_last
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(layer_causal_map(model, x, layers=said[0]).layers) == said[0]  # the advice maps
        if not samples_last:  # and naming the left-out layer is refused, as its note says
            with pytest.raises(ValueError, match="'proj' returned \\[1, 8\\] for 12 samples at the last of its 2 calls"):
                layer_causal_map(model, x, layers=["body", "proj", "head"])
