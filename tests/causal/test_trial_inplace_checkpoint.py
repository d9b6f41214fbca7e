"""Trial (inplace): first-order estimates of a layer inside torch.utils.checkpoint."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal.causal import unit_effects


class Checkpointed(nn.Module):
    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.inp, self.out = nn.Linear(4, 5), nn.Linear(5, 2)
        self.block = nn.Sequential(nn.Linear(5, 5), nn.Tanh())
        self.reentrant = reentrant

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        return self.out(checkpoint(self.block, h, use_reentrant=self.reentrant) + h)


def test_a_reentrant_checkpoint_around_the_layer_is_named_in_the_refusal():
    # the refusal blamed a .detach() or torch.no_grad() the model does not have
    torch.manual_seed(0)
    x = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    model = Checkpointed(reentrant=True).double().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own advice on use_reentrant
        with pytest.raises(ValueError, match=r"use_reentrant=True\) around it: use_reentrant=False lets gradients through"):
            unit_effects(model, x, "block.0", method="atp", use_suffix=False, target=0)
        fine = Checkpointed(reentrant=False).double().eval()
        fine.load_state_dict(model.state_dict())
        estimate = unit_effects(fine, x, "block.0", method="atp", use_suffix=False, target=0)
        torch.testing.assert_close(estimate, unit_effects(fine, x, "block.0", method="atp", target=0), atol=1e-12, rtol=0)  # fx
        assert estimate.abs().max() > 1e-3
