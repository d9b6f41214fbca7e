"""UnitImportanceAudit's bars called the units of ``unit_dim=-1`` "neuron" wherever the layer was not a convolution
itself: an activation after an ``nn.Conv1d`` (``[N, C, T]``: its time steps) and the complex modes of a Fourier
layer (``torch.fft.rfft``) alike. The units are now named by what the model says they are (one pass of one probe
sample with a hook on every module): positions where the layer carries a convolution's (a norm's, a pool's) output
through activations and dropouts, with the note naming that convolution; modes where its output is complex; neurons
for the features of ``[N, T, D]`` as before."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit


class _Spectral(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, T] -> its modes [N, C, T // 2 + 1]
        return torch.fft.rfft(x)


class _Mix(nn.Module):
    def __init__(self, modes: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(1.0, 0.2, modes))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.w


class _Fourier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fft, self.mix, self.head = _Spectral(), _Mix(5), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.fft.irfft(self.mix(self.fft(x)), n=8).flatten(1)[:, :8])


def _names(model: nn.Module, x: torch.Tensor, layers: list[str], **options) -> tuple[dict, list]:
    r = UnitImportanceAudit(layers, target=0, **options).run(model, Probe(x))
    return {layer: r.meta.get(f"unit_kind/{layer}") for layer in layers}, r.meta.get("notes", [])


def test_an_activation_after_a_conv1d_ranks_positions_and_says_so() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 3, 1), nn.BatchNorm1d(3), nn.ReLU(), nn.Dropout(0.1), nn.Flatten(), nn.Linear(15, 2))
    kinds, notes = _names(model, torch.randn(4, 2, 5), ["1", "2", "3"], unit_dim=-1)
    assert kinds == {"1": "position", "2": "position", "3": "position"}
    assert any(n.startswith("3 carries the output of nn.BatchNorm1d '1'") and "ranks its positions" in n for n in notes)


def test_fourier_modes_are_modes() -> None:
    torch.manual_seed(0)
    kinds, _ = _names(_Fourier().eval(), torch.randn(4, 1, 8), ["fft", "mix"], unit_dim=-1)
    assert kinds == {"fft": "mode", "mix": "mode"}


def test_features_of_sequence_states_are_neurons() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Flatten(), nn.Linear(20, 2))
    kinds, _ = _names(model, torch.randn(4, 5, 3), ["0", "1"], unit_dim=-1)
    assert kinds == {"0": "neuron", "1": "neuron"}
