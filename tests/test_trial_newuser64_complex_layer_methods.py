"""newuser64 trial: Captum's layer methods on a complex layer (a Fourier neural operator's modes). ``layer_attribute``
(and ``CaptumBaseline(layers=[...])``) returned complex "attributions" ``g·d``, autograd's gradient
``g = df/dRe + i df/dIm`` times the activation as complex numbers, whose real part is minus the first-order change
wherever the output reads the imaginary part (on the model below, -(-0.434) = 0.434 where the exact effect is
-0.434). The gradient methods now refuse a complex layer, naming ``unit_effects(..., method='attribution')``, which
gives ``Re(conj(g)·d)``; ``LayerActivation`` averages the complex values as before."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import layer_attribute
from lightning_causal.causal import unit_effects


class _ToComplex(nn.Module):
    def forward(self, x):
        return torch.complex(x[:, 0], x[:, 1])  # [N, 3] complex units


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))

    def forward(self, z):  # linear in the real and imaginary parts: first-order estimates are exact
        return torch.stack([z.imag @ self.w, z.real @ self.w], 1)


def _setup() -> tuple[nn.Module, torch.Tensor]:
    return nn.Sequential(_ToComplex(), _Head()).eval(), torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("method", ["LayerGradientXActivation", "LayerIntegratedGradients", "LayerConductance"])
def test_gradient_layer_methods_refuse_a_complex_layer(method: str) -> None:
    model, x = _setup()
    with pytest.raises(ValueError, match=r"complex .*Re\(conj\(g\)·d\).*method='attribution'"):
        layer_attribute(model, x, "0", method, target=0, unit_dim=-1)


def test_the_way_out_gives_the_first_order_change_and_activations_still_average() -> None:
    model, x = _setup()
    want = x[:, 1] * torch.tensor([1.0, 2.0, 3.0])  # target 0 reads Im z: zeroing unit u removes w_u Im z_u
    torch.testing.assert_close(unit_effects(model, x, "0", target=0, unit_dim=-1, method="attribution"), want)
    mean = layer_attribute(model, x, "0", "LayerActivation", unit_dim=-1)
    torch.testing.assert_close(mean, torch.complex(x[:, 0], x[:, 1]))  # one position per unit: the activation itself
