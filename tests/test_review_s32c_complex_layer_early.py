"""Review s32c of dc7cb68e: Captum's gradient layer methods refuse a complex layer (a Fourier layer's modes), but the
refusal came after Captum's whole attribution had run: on a small FNO of 64 fields [1, 128], LayerIntegratedGradients
was refused after 1,222 rows run (the probe 19 times), LayerConductance after 1,160, LayerGradientXActivation after 132.
The layer's dtype is now read in the one-row pass the layer methods already run (the repeated-call warning's), and the
refusal comes there: only the set-up's pass of the probe and the one-row site passes run. LayerActivation still averages the complex values."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import layer_attribute


class _Modes(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, 1, 16] -> complex modes [N, 1, 9]
        return torch.fft.rfft(x)


class _Back(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft(z * torch.linspace(1.0, 0.2, z.shape[-1]), n=16)[:, 0, :3]


def _setup() -> tuple[nn.Module, torch.Tensor, list[int]]:
    model = nn.Sequential(_Modes(), _Back()).eval()
    rows: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: rows.append(args[0].shape[0]))
    return model, torch.randn(12, 1, 16, generator=torch.Generator().manual_seed(0)), rows


@pytest.mark.parametrize("method", ["LayerIntegratedGradients", "LayerConductance", "LayerGradientXActivation"])
def test_refused_before_captums_passes(method: str) -> None:
    model, x, rows = _setup()
    with pytest.raises(ValueError, match=r"complex \(torch\.complex64.*method='attribution'"):
        layer_attribute(model, x, "0", method, target=0, unit_dim=-1)
    assert sum(rows) == x.shape[0] + 2  # the set-up's pass of the probe and the two one-row site passes only


def test_layer_activation_still_averages_complex_values() -> None:
    model, x, _ = _setup()
    mean = layer_attribute(model, x, "0", "LayerActivation", unit_dim=1)  # one channel: the mean of its 9 modes
    torch.testing.assert_close(mean, torch.fft.rfft(x).mean(2))
