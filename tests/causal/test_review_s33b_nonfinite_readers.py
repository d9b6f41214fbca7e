"""Review of the change b2c50b42 (the linear update for convolution readers): a reader whose probe input holds an
``inf`` in some sample (an ``exp`` that overflowed in float32, squashed later by a ``tanh``) was answered there as
``y + (h' - h)_S W_S``, ``inf - inf``: NaN effects where the full passes give finite ones; the same for ``nn.Linear``
readers (session 32's update) and for a reader's output that overflowed from finite inputs. Those samples' rows now
take the layer's own product; the other samples keep the update."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.interventions import Scale, SetTo


class Exp(nn.Module):
    def forward(self, z):
        return z.exp()


def _conv_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), Exp(), nn.Conv2d(16, 8, 3, padding=1), nn.Tanh(),
                          nn.Flatten(), nn.Linear(8 * 36, 3))
    with torch.no_grad():
        model[2].weight.abs_()  # the reader's outputs an inf reaches are +inf, which the tanh makes 1
    return model.double().eval()


def _linear_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), Exp(), nn.Linear(32, 8), nn.Tanh(), nn.Linear(8, 3))
    with torch.no_grad():
        model[2].weight.abs_()
    return model.double().eval()


@pytest.mark.parametrize("make, shape", [(_conv_model, (3, 6, 6)), (_linear_model, (4,))], ids=["conv", "linear"])
def test_samples_whose_reader_input_is_infinite_take_the_layers_product(make, shape, updates):
    model = make()
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x[1] *= 3000.0  # sample 1's exp overflows in some units
    h = model[1](model[0](x))
    assert torch.isinf(h[1]).any() and torch.isfinite(h[[0, 2, 3, 4]]).all() and torch.isfinite(model(x)).all()
    fast, info = unit_effects(model, x, "1", target=1, intervention=SetTo(0.0), return_info=True)
    full = unit_effects(model, x, "1", target=1, intervention=SetTo(0.0), use_suffix=False)
    assert torch.isfinite(full).all()
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)  # before: NaN where sample 1's unit was inf
    assert info.linear_updates == ("'2'",) and updates["rows"] > 0  # the other samples keep the update


def test_samples_whose_convolution_output_overflows_take_its_product(updates):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv1d(8, 4, 3, padding=1), nn.Tanh(),
                          nn.Flatten(), nn.Linear(4 * 10, 3)).double().eval()
    x = torch.rand(4, 2, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 1.0
    with torch.no_grad():
        model[0].weight.abs_()
        model[0].bias.fill_(1.0)  # every channel positive: the ReLU passes all
        model[2].weight.mul_(0.1)
        model[2].weight[:, 2] = 1e3  # channel 2's sum overflows in sample 0 only: zeroing it makes it finite
    x[0] *= 1e305
    h = model[1](model[0](x))
    assert torch.isfinite(h).all() and torch.isinf(model[2](h)[0]).any() and torch.isfinite(model[2](h)[1:]).all()
    fast, info = unit_effects(model, x, "1", target=1, intervention=Scale(0.0), return_info=True)
    full = unit_effects(model, x, "1", target=1, intervention=Scale(0.0), use_suffix=False)
    assert torch.isfinite(full[0, 2])
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-9, equal_nan=True)  # before: NaN in sample 0
    assert info.linear_updates == ("'2'",) and updates["rows"] > 0
