"""Captum's layer methods on a module that runs several times per forward pass (a shared layer)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.baselines import layer_attribute


class _Twice(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.shared, self.out = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = torch.tanh(self.shared(h))
        return self.out(torch.tanh(self.shared(h)))


def test_a_layer_method_on_a_shared_layer_warns_that_it_reads_the_last_call():
    model, x = _Twice().double().eval(), torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    calls = []
    handle = model.shared.register_forward_hook(lambda _m, _i, out: calls.append(out.detach().clone()))
    with torch.no_grad():
        model(x)
    handle.remove()
    # before: silent, though unit_effects intervenes on both calls and Captum reads the second only
    with pytest.warns(UserWarning, match=r"'shared' runs 2 times per forward pass; LayerActivation reads its last call"):
        got = layer_attribute(model, x, "shared", "LayerActivation", target=0)
    torch.testing.assert_close(got, calls[1])
    with pytest.warns(UserWarning, match=r"'shared' runs 2 times per forward pass; LayerConductance"):
        layer_attribute(model, x, "shared", "LayerConductance", target=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer_attribute(model, x, "inp", "LayerActivation", target=0)  # runs once: no warning
