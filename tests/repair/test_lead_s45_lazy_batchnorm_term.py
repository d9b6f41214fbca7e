"""Session 45, final read D45 F4 (older than the session): a repair term called before the model's first forward on a
model holding a ``LazyBatchNorm1d`` raised ``ValueError: Attempted to use an uninitialized parameter in <method
'is_inference'>`` from ``PairedPasses``' buffer list. The term now runs, and gives what the same model, its lazy layer
made by a first call, gives."""
import copy

import torch
from torch import nn

from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm


def _lazy():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.LazyBatchNorm1d(), nn.ReLU(), nn.Linear(8, 2)).train()


def test_a_term_before_the_first_forward_of_a_lazy_batchnorm():
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    x[:, 3] = (x[:, 3] > 0).float()
    y = torch.randint(0, 2, (40,), generator=torch.Generator().manual_seed(2))
    made = _lazy()
    with torch.no_grad():
        made(x[:2])  # makes the lazy layer: its running statistics then reset to those of a fresh layer
    made[1].reset_running_stats()
    fresh = _lazy()
    term = CounterfactualFairnessTerm(AttributeFlip(3))
    value = term.loss(fresh, x, y)
    expected = CounterfactualFairnessTerm(AttributeFlip(3)).loss(copy.deepcopy(made), x, y)
    assert torch.isfinite(value) and torch.allclose(value, expected, atol=1e-6), (value, expected)
