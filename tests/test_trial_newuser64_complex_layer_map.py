"""newuser64 trial: LayerMapAudit on a Fourier neural operator, whose spectral layers return complex modes. The layer
causal map's CKA of a complex layer was silently wrong (torch's only sign: "Casting complex values to real discards the
imaginary part"): the Gram of its response profiles was ``X X^T`` cast to real, ``Re X Re X^T - Im X Im X^T``, where
the linear kernel of complex features is ``Re(X X^H)``, the Gram of their real and imaginary parts side by side. The
reference here is the same model whose layer returns ``torch.view_as_real`` of the same values: a real layer holding
the same numbers, whose map the package computed right. Before the fix the CKA was 0.836 against the real layer's
0.862."""

import warnings

import torch
from torch import nn

from lightning_causal.causal import layer_causal_map


class _Pre(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 6)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)))
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(x))


class _ToComplex(nn.Module):
    def __init__(self, as_pairs: bool) -> None:
        super().__init__()
        self.as_pairs = as_pairs

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = torch.complex(h[:, :3], h[:, 3:] ** 2)  # complex units [N, 3]
        return torch.view_as_real(z) if self.as_pairs else z  # the same numbers as real pairs [N, 3, 2]


class _Head(nn.Module):
    def __init__(self, as_pairs: bool) -> None:
        super().__init__()
        self.as_pairs = as_pairs

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = torch.view_as_complex(z.contiguous()) if self.as_pairs else z
        real = (z.real * torch.tensor([1.0, -2.0, 0.5])).sum(1) + (z.imag * torch.tensor([0.3, 1.0, 2.0])).sum(1)
        return torch.stack([real, z.abs().sum(1)], 1)


def _map(as_pairs: bool):
    model = nn.Sequential(_Pre(), _ToComplex(as_pairs), _Head(as_pairs)).eval()
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(1))
    return layer_causal_map(model, x, layers=["0", "1"], target=0)


def test_cka_of_a_complex_layer_equals_that_of_its_real_and_imaginary_parts() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Casting complex values to real")  # no imaginary part dropped
        complex_map = _map(as_pairs=False)
    pairs_map = _map(as_pairs=True)
    torch.testing.assert_close(complex_map.cka, pairs_map.cka)
    torch.testing.assert_close(complex_map.response, pairs_map.response)
    assert 0.85 < float(pairs_map.cka[0, 1]) < 0.87  # 0.862: the two layers' profiles differ, so a wrong Gram shows
