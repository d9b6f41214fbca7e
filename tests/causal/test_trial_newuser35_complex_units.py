"""Trial newuser35: a signal model whose hidden layer returns complex values (``torch.fft`` frames, or
``torch.complex(re, im)``). The exact unit effects were right, but ``unit_effects(method="attribution")``
returned complex "effects" ``delta * grad`` whose real part had the wrong sign wherever the output reads the
imaginary part: autograd's gradient of a real output in a complex value is ``dL/dRe + i dL/dIm``, and the
first-order change is ``Re(conj(grad) * delta)``."""

import torch
from torch import nn

from lightning_causal.causal import unit_effects


class _ToComplex(nn.Module):
    def forward(self, x):
        return torch.complex(x[:, 0], x[:, 1])  # [N, 3] complex units


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))

    def forward(self, z):  # linear in the real and imaginary parts: the first-order estimate is exact
        return torch.stack([z.imag @ self.w, z.real @ self.w, (z.real - 2 * z.imag) @ self.w], 1)


def test_first_order_unit_effects_of_complex_units_are_real_and_exact_on_a_linear_head():
    model = nn.Sequential(_ToComplex(), _Head()).eval()
    x = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0))
    z, w = torch.complex(x[:, 0], x[:, 1]), torch.tensor([1.0, 2.0, 3.0])
    for target, want in enumerate((z.imag * w, z.real * w, (z.real - 2 * z.imag) * w)):  # zeroing unit u removes its term
        exact = unit_effects(model, x, "0", target=target)
        approx = unit_effects(model, x, "0", target=target, method="attribution")
        torch.testing.assert_close(exact, want)
        assert approx.dtype == torch.float32
        torch.testing.assert_close(approx, want)
