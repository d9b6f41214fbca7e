"""A model that writes to a per-sample forward argument in place, on every path: the rows a call
gathers are copies, and the first call of a few rows must not hide that the model writes to them."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects


class ScalesInPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        scale.mul_(2.0)
        return self.b(torch.tanh(self.a(x)) * scale)


@pytest.mark.parametrize("use_suffix", [True, False])
@pytest.mark.parametrize("max_batch_size", [3, 5, None])
def test_unit_effects_of_a_model_scaling_its_argument_in_place_on_every_path(use_suffix, max_batch_size):
    torch.manual_seed(0)
    model = ScalesInPlace().double().eval()
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    scale = torch.rand(5, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.5
    given = scale.clone()
    got = unit_effects(model, x, "a", target=0, additional_forward_args={"scale": scale}, max_batch_size=max_batch_size,
                       use_suffix=use_suffix)
    assert torch.equal(scale, given)
    with torch.no_grad():
        h = torch.tanh(model.a(x)) * given * 2.0
        want = h * model.b.weight[0]  # zeroing unit u removes w_u h_u
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    assert input_effects(model, x, target=0, additional_forward_args={"scale": scale}).shape == (5, 3)
    assert torch.equal(scale, given)
