"""An output layer under a parametrization without ``right_inverse`` (review of newuser126's 6a321af5).

Feature Shift Tuning now writes the re-initialised head through its parametrization (``right_inverse``); a
parametrization without one (a LoRA registered as a parametrization, minLoRA's, on every ``nn.Linear``) made torch raise
"parametrization ... does not implement right_inverse" at the backdoor term's set-up, where the contrast runs by
default. Such a head is refused in words naming the way out, and the default contrast (``contrast=None``) leaves it out.
"""
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.feature_shift import feature_shifted, output_layer


class _Delta(nn.Module):
    """A low-rank delta added to the weight, minLoRA-style: no right_inverse."""

    def __init__(self, out_features: int, in_features: int) -> None:
        super().__init__()
        self.a, self.b = nn.Parameter(torch.zeros(out_features, 2)), nn.Parameter(torch.randn(2, in_features) * 0.01)

    def forward(self, w):
        return w + self.a @ self.b


class _Inverted(nn.Module):
    def forward(self, w):
        return 2.0 * w

    def right_inverse(self, w):
        return w / 2.0


def _net(parametrization: nn.Module | None) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    if parametrization is not None:
        parametrize.register_parametrization(net[3], "weight", parametrization)
    return net


def test_a_head_without_right_inverse_is_refused_naming_the_way_out():
    net = _net(_Delta(10, 256))
    with pytest.raises(ValueError, match=r"parametrization _Delta has no `right_inverse`.*`contrast=False`"):
        output_layer(net, 10)
    with pytest.raises(ValueError, match="right_inverse"):
        feature_shifted(net, torch.rand(16, 1, 8, 8), 10, epochs=1)


def test_the_default_contrast_leaves_such_a_head_out_and_keeps_the_others():
    x = torch.rand(16, 1, 8, 8)
    term = BackdoorSuppressionTerm()
    assert not term._contrast_runs(_net(_Delta(10, 256)), x, 10)
    assert term._contrast_runs(_net(None), x, 10)
    assert term._contrast_runs(_net(_Inverted()), x, 10)
    shifted = feature_shifted(_net(_Inverted()), x, 10, epochs=1)  # written through its right_inverse
    assert not torch.equal(shifted[3].weight, _net(_Inverted())[3].weight)
