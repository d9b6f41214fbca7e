"""Final read of b508ffcc: the plain fx suffix is traced from the class's ``forward``, so a forward replaced on the
instance, or a forward hook on the model itself, is not in it. b508ffcc checked it against the model in the causal graph
only; ``carrier_unit_effects`` (the fairness audits' carriers) still used it unchecked: 0.304 off its full passes. It is
checked on one row of the factual pass now, and used where it reproduces the model."""

import types

import pytest
import torch
from torch import nn

from lightning_causal.causal.scm.fairness import carrier_unit_effects

SCALE = torch.tensor([3.0, -1.0], dtype=torch.float64)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval()


def _scaled(self, x):
    return type(self).forward(self, x) * SCALE


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, generator=g, dtype=torch.float64)
    cf = x.clone()
    cf[:, 0] = -cf[:, 0]
    return x, cf


@pytest.mark.parametrize("way", ["instance forward", "hook on the model"])
def test_a_forward_the_class_does_not_hold_gives_the_full_passes_numbers(way):
    model = _net()
    if way == "instance forward":
        model.forward = types.MethodType(_scaled, model)
    else:
        model.register_forward_hook(lambda _m, _i, out: out * SCALE)
    x, cf = _data()
    fast = carrier_unit_effects(model, x, lambda _z: cf, "1", target=0)
    full = carrier_unit_effects(model, x, lambda _z: cf, "1", target=0, use_suffix=False)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)


def test_a_plain_model_still_takes_the_suffix():
    model, calls = _net(), [0]
    model[0].register_forward_hook(lambda _m, i, _o: calls.__setitem__(0, calls[0] + i[0].shape[0]))
    x, cf = _data()
    fast = carrier_unit_effects(model, x, lambda _z: cf, "1", target=0)
    rows_fast, calls[0] = calls[0], 0
    full = carrier_unit_effects(model, x, lambda _z: cf, "1", target=0, use_suffix=False)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    assert rows_fast < calls[0]  # the suffix runs the patched rows past the first layer
