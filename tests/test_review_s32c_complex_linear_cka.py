"""Review s32c of 8d4057f8: the layer map's Gram of a complex layer became ``Re(X X^H)`` (its real and imaginary parts
side by side), but the public ``linear_cka`` of the same module's family still cast a complex representation to real
with ``.double()``, dropping the imaginary part (torch's only sign a "Casting complex values to real" warning): the CKA
of Fourier modes ``z`` with the same numbers as real pairs was 0.719, not 1, and with ``1j * z`` (a rotation of each
pair: orthogonal) not 1 either. It now takes a complex representation as ``torch.view_as_real`` of it, the map's
convention."""

import warnings

import torch

from lightning_causal.causal.structure import linear_cka
from lightning_causal.causal.structure.cka import gram_cka


def _z() -> torch.Tensor:
    return torch.randn(20, 3, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))


def test_complex_representation_is_its_real_pairs() -> None:
    z = _z()
    pairs = torch.view_as_real(z).reshape(20, 6)
    other = torch.randn(20, 4, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Casting complex values to real")
        assert abs(linear_cka(z, pairs) - 1.0) < 1e-9
        assert abs(linear_cka(z, 1j * z) - 1.0) < 1e-9  # i rotates each (re, im) pair: an orthogonal transform
        assert abs(linear_cka(z, other) - linear_cka(pairs, other)) < 1e-9


def test_equals_the_layer_maps_complex_gram() -> None:
    z = _z().to(torch.complex128)
    y = torch.randn(20, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    zc, yc = z - z.mean(0), y - y.mean(0)
    grams = [(zc @ zc.mH).real, yc @ yc.T]  # layer_trace.py's Re(X_c X_c^H), X_c X_c^T for a real layer
    assert abs(linear_cka(z, y) - float(gram_cka(grams)[0, 1])) < 1e-9
