"""unit_effects on a module the model skips at random (stochastic depth from a generator of its own, in eval
mode too): when the module ran in the site check but not in the pass over the probe, the refusal says why
(it was a bare "Expected module 'b' to be called by the model's forward")."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class RandomSkip(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 2)
        self.gen = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x).relu()
        if torch.rand((), generator=self.gen) < 0.5:  # the block runs in half the passes, eval mode included
            h = h + self.b(h)
        return self.c(h)


def test_a_module_that_stops_running_is_refused_naming_the_random_skip():
    torch.manual_seed(0)
    x = torch.randn(8, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"'b' to be called.*ran in an earlier pass.*skips at random"):
            unit_effects(RandomSkip(3).eval(), x, "b", target=0, max_batch_size=2)
