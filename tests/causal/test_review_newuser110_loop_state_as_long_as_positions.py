"""98697617 refuses the default units of an output of no said layout whose dimension 1 is as long as the token ids
(a parallel scan's states ``[N, T, D, S]``). A loop over time's state at one step, ``[N, D, S]`` from a module called at
each step, whose ``D`` channels are as many as the probe's ``T`` by chance (4 and 4), is refused too (its default
gave the channels before), and the refusal said "so it holds positions" with `unit_dim=-1` (its ``S`` states: no
channels) as the way out. It now names that case and `unit_dim=1`, which gives the channels: the parallel form's
``unit_dim=2`` effects. Attention weights ``[N, H, T, T]`` (a functional softmax, then an ``nn.Dropout``) with ``H == T``
are refused alike: the refusal names their heads, which `unit_dim=1` reads."""
import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.causal.test_trial_newuser110_scan_state_units import _Scan


def test_a_loops_channels_as_many_as_the_positions_are_named():
    ids = torch.randint(0, 10, (5, 4), generator=torch.Generator().manual_seed(0))  # T = 4 = D
    with pytest.raises(ValueError, match=r"(?s)\[1, 4, 3\].*a loop over time's state at one step, \[N, D, S\] with "
                                         r"D == 4.*another length.*`unit_dim=1` for dimension 1 as it is.*a loop's "
                                         r"channels D"):
        unit_effects(_Scan(False).double(), ids, "step", target=0)
    loop = unit_effects(_Scan(False).double(), ids, "step", target=0, unit_dim=1)
    torch.testing.assert_close(loop, unit_effects(_Scan(True).double(), ids, "states", target=0, unit_dim=2))


class _Attention(nn.Module):
    """ids -> 4 heads of attention weights softmax(q k^T) [N, 4, T, T] (dropout ``drop``) -> the last token's logits."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.qk, self.drop, self.head = nn.Embedding(10, 8), nn.Linear(8, 16), nn.Dropout(0.1), nn.Linear(8, 2)

    def forward(self, ids):
        x = self.emb(ids)
        n, t, _ = x.shape
        q, k = self.qk(x).view(n, t, 2, 4, 2).unbind(2)
        a = self.drop(torch.softmax(torch.einsum("nthd,nshd->nhts", q, k), -1))
        return self.head(torch.einsum("nhts,nshd->nthd", a, x.view(n, t, 4, 2)).reshape(n, t, 8)[:, -1])


def test_heads_as_many_as_the_positions_are_named():
    ids = torch.randint(0, 10, (3, 4), generator=torch.Generator().manual_seed(0))  # T = 4 = H
    with pytest.raises(ValueError, match=r"(?s)\[1, 4, 4, 4\].*the heads of attention weights \[N, H, T, T\] with "
                                         r"H == 4.*`unit_dim=1` for dimension 1 as it is.*or the heads"):
        unit_effects(_Attention().eval(), ids, "drop", target=0)
    assert unit_effects(_Attention().eval(), ids, "drop", target=0, unit_dim=1).shape == (3, 4)
