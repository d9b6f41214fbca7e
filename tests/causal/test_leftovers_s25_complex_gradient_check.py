"""The check that autograd sees every path from a site to the output (gradient_check.probe_gaps) skipped complex
values: a layer returning complex frames (torch.fft, torch.complex) or complex inputs (STFT frames), whose
first-order estimates (method="attribution": Re(conj(grad) * delta)) follow autograd as a real layer's do, were never
checked, so a detached branch after them left the estimates silently wrong. The check now runs on their real and
imaginary parts; a model that autograd sees whole (a strongly non-linear readout included: the check compares
derivatives, not the first-order estimate with the exact change) is not warned about."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.effects.gradient_check import probe_gaps

X = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0))
W = torch.tensor([1.0, 2.0, 3.0])


class _ToComplex(nn.Module):
    def forward(self, x):
        return torch.complex(x[:, 0], x[:, 1])  # [N, 3] complex units


class _Detached(nn.Module):
    """Reads the imaginary parts through a .detach(): autograd sees the real parts' path only."""

    def forward(self, z):
        out = z.real @ W + z.detach().imag @ (2 * W)
        return torch.stack([out, -out], 1)


class _Smooth(nn.Module):
    """A strongly non-linear readout that autograd sees whole."""

    def forward(self, z):
        out = torch.tanh(3 * (z * z.conj()).real @ W) + torch.sin(4 * z.imag) @ W
        return torch.stack([out, -out], 1)


def _warned(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if "misses part of how the output depends" in str(w.message)]


def test_a_detached_branch_after_a_complex_layer_is_warned_about():
    model = nn.Sequential(_ToComplex(), _Detached()).eval()
    got = {}
    messages = _warned(lambda: got.update(approx=unit_effects(model, X, "0", target=0, method="attribution")))
    assert len(messages) == 1 and "layer '0'" in messages[0]
    z = torch.complex(X[:, 0], X[:, 1])
    torch.testing.assert_close(unit_effects(model, X, "0", target=0), z.real * W + 2 * z.imag * W)  # both terms
    torch.testing.assert_close(got["approx"], z.real * W)  # the first-order estimate misses the detached one


def test_complex_inputs_read_through_a_detached_branch_are_warned_about():
    model = _Detached().eval()
    z = torch.complex(X[:, 0], X[:, 1])
    assert len(_warned(lambda: input_effects(model, z, target=0, method="attribution"))) == 1


class _Mixed(nn.Module):
    """A complex matrix, then the real and imaginary parts of its outputs: linear, read whole."""

    def forward(self, z):
        m = torch.complex(torch.tensor([[1.0, -2.0], [0.5, 1.0], [3.0, 0.0]]), torch.tensor([[0.0, 1.0], [-1.0, 2.0], [1.0, 1.0]]))
        out = z @ m
        return out.real + out.imag


@pytest.mark.parametrize("head", [_Smooth, _Mixed])
def test_a_complex_layer_that_autograd_sees_whole_is_not_warned_about(head):
    model = nn.Sequential(_ToComplex(), head()).eval()
    assert _warned(lambda: unit_effects(model, X, "0", target=0, method="attribution")) == []


def test_the_gaps_of_complex_values_are_those_of_their_real_and_imaginary_parts():
    """f = Re z + 2 Im z read whole: autograd's derivative along any d is Re(conj(1 + 2i) d) = Re d + 2 Im d, the
    change of f exactly (f is linear): gaps at the rounding; read with Im z detached, the derivative misses 2 Im d."""
    z = torch.complex(X[:, 0], X[:, 1]).to(torch.complex128)

    def run(detach: bool):
        return lambda edit: (lambda v: v.real.sum(1) + 2 * (v.imag.detach() if detach else v.imag).sum(1))(edit(0, z))

    assert float(probe_gaps(run(False)).max()) < 1e-6
    assert float(probe_gaps(run(True)).min()) > 0.05
