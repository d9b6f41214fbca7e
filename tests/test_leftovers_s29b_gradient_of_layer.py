"""Leftovers of session 28: a forward that returns the derivative of its output with respect to a layer's own output
(``dy/dh = torch.autograd.grad(y, h, create_graph=True)`` with ``h = self.a(x)``) had the first-order estimates of that
layer (``method='atp'``/``'attribution'``, ``screen=``) refused in the words written for forces ``-dE/dx``: "setting a
unit also takes away its derivative with respect to the inputs", a derivative this model never takes. The refusal now
says what the model does (a gradient with respect to the layer's own output, ``dy/dh``) and names what runs:
``method='exact'``, whose effects equal a hand ``do()``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.test_review_s28a_keeping_graph import _Forces


class GradientOfLayer(nn.Module):
    """``dy/dh`` with ``h = a(x)``, ``y = b(tanh(h))``: column ``k`` is ``(1 - tanh(h_k)^2) · Σ_j W_b[j, k]``."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            h = self.a(x)
            return torch.autograd.grad(self.b(torch.tanh(h)).sum(), h, create_graph=True)[0]


def _model_and_probe() -> tuple[GradientOfLayer, torch.Tensor]:
    torch.manual_seed(0)
    return GradientOfLayer().eval(), torch.randn(5, 3)


@pytest.mark.parametrize("kwargs", [{"method": "atp"}, {"method": "attribution"}, {"screen": 2}])
def test_first_order_estimates_of_the_layer_differentiated_with_respect_to_say_so(kwargs):
    model, x = _model_and_probe()
    with pytest.raises(ValueError, match=r"takes gradients with respect to the output of layer 'a' itself .*dy/dh.*"
                                         r"Use method='exact' without screen=") as info:
        unit_effects(model, x, "a", target=0, **kwargs)
    assert "with respect to the inputs" not in str(info.value)  # before: the forces' words


def test_the_way_out_exact_effects_equal_the_derivative_by_hand():
    model, x = _model_and_probe()
    h = model.a(x).detach()
    column = model.b.weight.detach().sum(0)  # Σ_j W_b[j, k]
    # target 0 reads dy/dh_0 = (1 - tanh(h_0)^2) Σ_j W_b[j, 0]: only do(h_0 := 0) moves it, to Σ_j W_b[j, 0]
    hand = torch.zeros(5, 4)
    hand[:, 0] = (1 - torch.tanh(h[:, 0]) ** 2) * column[0] - column[0]
    torch.testing.assert_close(unit_effects(model, x, "a", target=0), hand)


def test_forces_of_the_inputs_keep_their_words():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"takes gradients in its forward pass.*derivative with respect to the inputs"):
        unit_effects(_Forces().eval(), torch.randn(5, 3), "net.1", unit_dim=-1, target=0, method="atp")
