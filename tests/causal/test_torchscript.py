"""TorchScript models: input-level effects run (no hooks needed) and equal the eager model's; layer sites
inside a scripted or traced module are refused with a message naming the module, not torch's hook error."""

import pytest
import torch
from torch import nn

from lightning_causal import input_effects, unit_effects


def _eager() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double().eval()


@pytest.mark.parametrize("kind", ["script", "trace"])
def test_input_effects_on_torchscript_equal_the_eager_model(kind):
    model = _eager()
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    compiled = torch.jit.script(model) if kind == "script" else torch.jit.trace(model, x[:2])
    expected = input_effects(model, x, target=1)
    got = input_effects(compiled, x, target=1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # by hand: feature 2 set to 0
    xb = x.clone()
    xb[:, 2] = 0
    torch.testing.assert_close(got[:, 2], model(x)[:, 1] - model(xb)[:, 1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["script", "trace"])
def test_layer_inside_torchscript_is_refused_with_a_clear_message(kind):
    model = _eager()
    x = torch.randn(6, 4, dtype=torch.float64)
    compiled = torch.jit.script(model) if kind == "script" else torch.jit.trace(model, x[:2])
    with pytest.raises(ValueError, match=r"layer '0'.*the model is a TorchScript module"):
        unit_effects(compiled, x, "0", target=0)
    outer = nn.Sequential(nn.Identity(), compiled)
    with pytest.raises(ValueError, match=r"layer '1\.0'.*module '1' is a TorchScript module"):
        unit_effects(outer, x, "1.0", target=0)
