"""Models as users wrap them: weight parametrizations (``torch.nn.utils.parametrize``) in the layer
map's default layers."""

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.default_layers import leaf_layers


class _Double(nn.Module):
    def forward(self, w):
        return 2 * w


class _LearnedScale(nn.Module):  # a parametrization with a parameter of its own
    def __init__(self):
        super().__init__()
        self.s = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, w):
        return self.s * w


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 2)).double().eval()


def test_parametrized_layers_stay_in_the_layer_map_default_layers_with_the_plain_models_numbers():
    x = torch.randn(12, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for wrap in (parametrizations.weight_norm, parametrizations.spectral_norm,
                 lambda m: parametrize.register_parametrization(m, "weight", _Double()),
                 lambda m: parametrize.register_parametrization(m, "weight", _LearnedScale())):
        model = _mlp()
        wrap(model[2])
        with torch.no_grad():  # the plain twin: the parametrized layer's weight as it computes it
            twin = _mlp()
            twin[2].weight.copy_(model[2].weight)
        assert leaf_layers(model) == ["0", "2", "4"]
        got, want = layer_causal_map(model, x), layer_causal_map(twin, x)
        assert got.layers == want.layers == ["0", "2", "4"]
        torch.testing.assert_close(got.response, want.response)
        torch.testing.assert_close(got.cka, want.cka)
