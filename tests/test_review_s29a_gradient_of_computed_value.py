"""Review of 201cb496 (a forward returning ``dy/dh``): the first-order estimates of a layer are refused in words of
their own where the forward differentiates with respect to the layer's output, ``torch.autograd.grad(y, h)``. A forward
that differentiates with respect to a value computed from that output (``z = tanh(h)``, ``dy/dz``) gets the same
refusal, for the same cause (the estimates give ``h`` as constants, so ``z`` records no graph: torch's "One of the
differentiated Tensors does not require grad"), but was told it differentiates with respect to "the output of layer
'a' itself", which it does not. The words now say "or a value computed from it"; the way out (``method='exact'``) gives
the hand ``do()``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class GradientOfComputedValue(nn.Module):
    """``dy/dz`` with ``z = tanh(a(x))``, ``y = Σ b(z ⊙ z)``: column ``k`` is ``2 z_k Σ_j W_b[j, k]``."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            z = torch.tanh(self.a(x))
            return torch.autograd.grad(self.b(z * z).sum(), z, create_graph=True)[0]


def _model_and_probe() -> tuple[GradientOfComputedValue, torch.Tensor]:
    torch.manual_seed(0)
    return GradientOfComputedValue().eval(), torch.randn(5, 3)


@pytest.mark.parametrize("kwargs", [{"method": "atp"}, {"screen": 2}])
def test_first_order_estimates_name_a_value_computed_from_the_layers_output(kwargs):
    model, x = _model_and_probe()
    with pytest.raises(ValueError, match=r"output of layer 'a' itself or a value computed from it .*"
                                         r"Use method='exact' without screen="):
        unit_effects(model, x, "a", target=0, **kwargs)


def test_the_way_out_exact_effects_equal_the_derivative_by_hand():
    model, x = _model_and_probe()
    z = torch.tanh(model.a(x)).detach()
    column = model.b.weight.detach().sum(0)  # Σ_j W_b[j, k]
    # target 0 reads dy/dz_0 = 2 z_0 Σ_j W_b[j, 0]; do(h_0 := 0) sets z_0 = 0, so that reading to 0; the other units
    # leave it unchanged
    hand = torch.zeros(5, 4)
    hand[:, 0] = 2 * z[:, 0] * column[0]
    torch.testing.assert_close(unit_effects(model, x, "a", target=0), hand)
