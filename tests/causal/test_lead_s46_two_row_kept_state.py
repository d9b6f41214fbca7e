"""A probe of exactly two rows beside a state kept from the probe's pass (review of newuser125).

With two probe rows the batch-dependence check runs sample 0 twice; where its two copies differ it returned unchecked
(a callable ``output=`` reading one entry per probe sample). A model keeping a membrane of the batch's size, made fresh
only where the shape changes (snntorch-like), gives two differing copies too: its effects mixed the carried state (the
clean pass) with fresh ones, silently. It is refused now, naming the state; a model that only writes such a tensor,
and an ordinary one, are not.
"""
import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _Spike(nn.Module):
    """A membrane kept on the module, fresh where the batch's size changes."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.o = nn.Linear(3, 4), nn.Linear(4, 1)
        self.mem = torch.zeros(0)

    def forward(self, x):
        if self.mem.shape[0] != x.shape[0]:
            self.mem = torch.zeros(x.shape[0], 4)
        self.mem = 0.9 * self.mem + self.fc(x)
        return self.o((self.mem > 0.5).float() + 0.1 * self.mem)


class _Records(nn.Module):
    """Writes its hidden rows (``self.last``, the batch's size) and never reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.o = nn.Linear(3, 4), nn.Linear(4, 1)
        self.last = torch.zeros(0)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        self.last = h.detach()
        return self.o(h)


def test_two_rows_beside_a_kept_membrane_are_refused_naming_it():
    torch.manual_seed(0)
    m = _Spike().eval()
    m(torch.randn(2, 3))  # an earlier call leaves a membrane of 2 rows
    with pytest.raises(ValueError, match=r"reads a state it keeps from earlier calls: mem \[2, 4\]"):
        input_effects(m, torch.randn(2, 3), torch.tensor([[0, 1, 2]]))


@pytest.mark.parametrize("n", [2, 3])
def test_a_written_only_tensor_of_the_batch_size_is_not_refused(n):
    torch.manual_seed(0)
    m = _Records().eval()
    x = torch.randn(n, 3)
    m(torch.randn(n, 3))
    effects = input_effects(m, x, torch.tensor([[0, 1, 2]]))
    with torch.no_grad():  # by hand: each feature set to 0, one sample at a time
        base = torch.stack([m(x[i:i + 1])[0] for i in range(n)])
        want = torch.stack([base - torch.stack([m(x[i:i + 1].index_fill(1, torch.tensor([j]), 0.0))[0]
                                                for i in range(n)]) for j in range(3)], 1)
    torch.testing.assert_close(effects.reshape(want.shape), want, atol=1e-6, rtol=0)
