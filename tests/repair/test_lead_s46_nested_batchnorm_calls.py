"""A BatchNorm layer of another class holding a BatchNorm layer (final read A46, regression of beada0fc).

The call-by-call pairing of BatchNorm subclasses (``_BatchNormCalls``) counted the held layer's ``F.batch_norm`` call
as the holder's second one: the holder was taken for a splitting (ghost) layer and its replay normalised by the held
layer's statistics, so a counterfactual-fairness term on a column the model never reads gave 0.19 at every step
instead of 0.0. Only a layer's own calls (its statistics and affine tensors) are counted and paired now.
"""
import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


class _Act(nn.BatchNorm1d):
    def forward(self, x):
        return torch.relu(super().forward(x))


class _HoldsPlain(nn.BatchNorm1d):
    def __init__(self, c):
        super().__init__(c)
        self.inner = nn.BatchNorm1d(c)

    def forward(self, x):
        return super().forward(torch.relu(self.inner(x)) * 3 + 1)


class _HoldsSubclass(nn.BatchNorm1d):
    def __init__(self, c):
        super().__init__(c)
        self.inner = _Act(c)

    def forward(self, x):
        return super().forward(self.inner(x) * 3 + 1)


class _GhostHoldsPlain(nn.BatchNorm1d):
    """Splits into two virtual batches after a BatchNorm layer it holds."""

    def __init__(self, c):
        super().__init__(c)
        self.inner = nn.BatchNorm1d(c)

    def forward(self, x):
        return torch.cat([super(_GhostHoldsPlain, self).forward(c) for c in (self.inner(x) * 3 + 1).chunk(2)])


class _Unread(nn.Module):
    """Column 3 is never read: its counterfactual gap is 0 whatever the normalisation."""

    def __init__(self, norm):
        super().__init__()
        self.a, self.n, self.b = nn.Linear(3, 8), norm(8), nn.Linear(8, 2)

    def forward(self, x):
        return self.b(self.n(self.a(x[:, :3])))


@pytest.mark.parametrize("norm", [_HoldsPlain, _HoldsSubclass, _GhostHoldsPlain])
def test_a_column_never_read_gives_zero_beside_nested_batchnorm(norm):
    torch.manual_seed(0)
    x = torch.randn(32, 4)
    x[:, 3] = (x[:, 3] > 0).float()
    y = torch.randint(0, 2, (32,))
    model = _Unread(norm).train()
    term = CounterfactualFairnessTerm(AttributeFlip(3))
    assert [term.loss(model, x, y).item() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert all(hasattr(m, "_forward_hooks") and not m._forward_hooks for m in model.modules())
