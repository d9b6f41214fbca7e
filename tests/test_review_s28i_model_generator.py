"""Review of 827781d1: the two passes that tell a forward differentiating through the layer from one that only
switches autograd on start from the same random state, the generators the model holds itself included."""

import contextlib
import random

import numpy as np
import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class _OwnGenerator(nn.Module):
    """y = net(x) (1 + 0.1 u), u drawn from the model's own torch.Generator; ``switch``: inside torch.enable_grad()."""

    def __init__(self, switch: bool) -> None:
        super().__init__()
        self.switch, self.gen = switch, torch.Generator().manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad() if self.switch else contextlib.nullcontext():
            return self.net(x) * (1 + 0.1 * torch.rand(x.shape[0], 1, generator=self.gen))


class _NumpyAndRandom(nn.Module):
    """y = net(x) (1 + 0.1 u + 0.01 v), u from the model's own NumPy Generator, v from its own random.Random."""

    def __init__(self, switch: bool) -> None:
        super().__init__()
        self.switch, self.rng, self.py = switch, np.random.default_rng(0), random.Random(0)
        self.net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad() if self.switch else contextlib.nullcontext():
            u = torch.as_tensor(self.rng.random((x.shape[0], 1)), dtype=x.dtype)
            return self.net(x) * (1 + 0.1 * u + 0.01 * self.py.random())


@pytest.mark.parametrize("kind", [_OwnGenerator, _NumpyAndRandom])
def test_atp_of_a_forward_switching_autograd_on_drawing_from_its_own_generators_is_that_of_its_twin(kind):
    # before: the constants pass and the graph-kept pass drew different numbers from the model's generator, and atp
    # was refused as "the model takes gradients in its forward pass" (at 6c52889e it equalled its twin's): the torch
    # Generator's case failed before 2c89716e, the NumPy and random ones before b575031d
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    got = []
    for switch in (True, False):
        torch.manual_seed(0)
        model = kind(switch).eval()
        got.append(unit_effects(model, x, "net.1", unit_dim=-1, target=0, method="atp", use_suffix=False))
        if kind is _OwnGenerator:  # left as found
            assert torch.equal(model.gen.get_state(), torch.Generator().manual_seed(0).get_state())
    torch.testing.assert_close(got[0], got[1], rtol=0, atol=0)  # the same draws
    assert bool(got[0].ne(0).any())
