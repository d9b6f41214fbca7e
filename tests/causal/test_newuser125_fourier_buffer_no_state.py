"""Trial newuser125 (neural fields): a coordinate MLP with random Fourier features keeps its fixed Gaussian matrix
``B`` ``[2, m]`` as a buffer (2: the coordinates x, y). A field that normalises its coordinates by the batch's box
(``(x - x.amin(0)) / (x.amax(0) - x.amin(0))``) depends on its batch, which the check of samples run alone refuses;
but on 2 probe rows (the callback's and ``audit_model``'s dry run) its refusal named ``B [2, 16]`` as "a state it
keeps from earlier calls (a recurrent state carried across batches)", its first dimension being the 2 rows by
chance, and advised resetting a recurrent state. A tensor of the batch's size that a pass of one row more reads as
well is no state of that batch: the refusal now names the batch statistic (a state of the
batch's rows is still named: tests/test_trial_newuser42_stateful.py and the other state checks)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class BoxNormalisedField(nn.Module):
    def __init__(self, m: int = 16):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("B", torch.randn(2, m, generator=g) * 2)  # fixed Fourier features, [2, m]
        self.net = nn.Sequential(nn.Linear(2 * m, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x):
        x = 2 * (x - x.amin(0)) / (x.amax(0) - x.amin(0)) - 1  # the batch's box: depends on the batch
        p = 2 * math.pi * x @ self.B
        return self.net(torch.cat([p.sin(), p.cos()], -1))


def _refusal(model, x):
    with pytest.raises(ValueError, match="treat samples independently") as info:
        input_effects(model, x, torch.tensor([[0, 1]]))
    return str(info.value)


@pytest.mark.parametrize("n", [2, 5])
def test_a_fixed_buffer_of_the_batch_size_is_not_named_a_state(n):
    torch.manual_seed(0)
    model = BoxNormalisedField().eval()
    x = torch.rand(n, 2) * 10
    before = model.B.clone()
    message = _refusal(model, x)
    assert "keeps from earlier calls" not in message and "B [2" not in message
    assert "batch" in message
    assert torch.equal(model.B, before)
