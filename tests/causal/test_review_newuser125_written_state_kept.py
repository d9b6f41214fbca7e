"""Review of newuser125's ccff26e4: a tensor named with the batch's size is left out of the samples-alone refusal's
"state kept from earlier calls" where a pass of one row more reads it too (a coordinate field's fixed Fourier matrix
``B`` ``[2, m]`` beside 2 probe rows). A true state carried across calls can be read at every size as well: a memory
bank of the last batch's rows that every row attends over, a streaming state padded for a larger batch, a state read
as its mean. Those the pass writes (sets anew or changes): they stay named, with the state's way out, as before that
commit (it gave "depends on the batch" or "a statistic over its batch" for them)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class Bank(nn.Module):  # the last batch's rows, attended over by every row, rewritten at each call
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)
        self.register_buffer("bank", torch.zeros(2, 3))

    def forward(self, x):
        a = (x @ self.bank.T).softmax(-1) @ self.bank
        self.bank = x.detach().clone()
        return self.lin(x + a)


class PaddedStream(nn.Module):  # a streaming state [N, H]; a larger batch reads the rows it has, zeros for the rest
    def __init__(self):
        super().__init__()
        self.cell, self.out, self.h = nn.GRUCell(3, 4), nn.Linear(4, 1), None

    def forward(self, x):
        h = torch.zeros(x.shape[0], 4)
        if self.h is not None:
            k = min(x.shape[0], self.h.shape[0])
            h = torch.cat([self.h[:k], h[k:]])
        h = self.cell(x, h)
        self.h = h.detach()
        return self.out(h)


class MeanContext(nn.Module):  # a state [N, H] carried, read as its mean at every size
    def __init__(self):
        super().__init__()
        self.proj, self.lin = nn.Linear(3, 4), nn.Linear(7, 1)
        self.register_buffer("h", torch.zeros(2, 4))

    def forward(self, x):
        out = self.lin(torch.cat([x, self.h.mean(0, keepdim=True).expand(x.shape[0], -1)], -1))
        self.h = 5 * self.proj(x).detach()
        return out


@pytest.mark.parametrize(("cls", "n", "named"), [(Bank, 2, "bank [2, 3]"), (Bank, 3, "bank [3, 3]"),
                                                 (PaddedStream, 3, "h [3, 4]"), (MeanContext, 2, "h [2, 4]")])
def test_a_state_written_and_read_at_every_size_stays_named(cls, n, named):
    torch.manual_seed(0)
    model = cls().eval()
    model(torch.randn(n, 3))  # an earlier batch leaves the state, of the batch's size
    with pytest.raises(ValueError, match="treat samples independently") as info:
        input_effects(model, torch.randn(n, 3), torch.tensor([[0, 1, 2]]))
    assert f"reads a state it keeps from earlier calls: {named}" in str(info.value)
    assert "resets the state" in str(info.value)
