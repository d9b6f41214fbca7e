"""The layer map's pass on a few rows (``layer_activations._not_samples_first``) ran one row for a probe of two: a
generator of yours run on one row (``gen(self.z)``, [1, 8]) then held as many rows as the pass, so it was advised in
``layers=`` and named in ``meta['left_out']`` as a layer to name with ``layers=``, and following the advice raised
ValueError ('gen' returned [1, 8] for 2 samples). For a probe of two that pass now runs three rows (its samples and
the first again): the generator is left out as with more samples, the advice maps, and a layer laid out ``[T, N, ...]``
with ``T = N = 2`` is still refused."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.layer_activations import BROADCAST
from tests.causal.test_leftovers_s41b_generator_not_advised import _GenHead, advised_layers


def test_a_probe_of_two_leaves_a_generator_of_one_row_out_of_the_advice() -> None:
    torch.manual_seed(0)
    model, x = _GenHead(True).eval(), torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    result, said = advised_layers(model, x)
    assert result.meta["left_out"]["gen"] == BROADCAST
    assert said == [["body", "head"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(layer_causal_map(model, x, layers=said[0]).layers) == said[0]  # the advice maps


class _StepsFirst(nn.Module):  # 'mix' returns [T, N, 4] with T = 2: as many rows as a probe of two, by coincidence
    def __init__(self) -> None:
        super().__init__()
        self.inp, self.mix, self.head = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.mix(self.inp(x).transpose(0, 1)).transpose(0, 1).flatten(1))


def test_a_probe_of_two_still_refuses_a_layer_of_steps_first() -> None:  # a guard: a pass of rows [0, 0] misses it
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"'mix' returned \[2, 2, 4\] for 2 samples but \[2, [13], 4\]"):
        layer_causal_map(_StepsFirst().eval(), torch.randn(2, 2, 3), layers=["inp", "mix"])
