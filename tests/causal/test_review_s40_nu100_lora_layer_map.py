"""Review of the change 19449138 (newuser100): a layer of the user's own that merges a low-rank update of its own
parameters in functional code (`F.linear(x, self.base.weight + self.B @ self.A, self.base.bias)`, a merged LoRA) holds
parameters, but no leaf module with parameters runs for it, so the layer map's default layers leave it out. The warning
and `meta["left_out"]` told the user it was 'a layer of yours whose weights are no parameters of its own', false of
this module (A and B are its own); they now say it applies its weights in functional code, and the `layers=` they name
maps it."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.functional_layers import OWN_WEIGHTS


class _MergedLoRA(nn.Module):
    def __init__(self, i: int, o: int, r: int = 2) -> None:
        super().__init__()
        self.base = nn.Linear(i, o)  # never runs: its weight is applied with the update merged
        self.A = nn.Parameter(torch.randn(r, i) * 0.1)
        self.B = nn.Parameter(torch.randn(o, r) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.base.weight + self.B @ self.A, self.base.bias)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(_MergedLoRA(8, 16), nn.ReLU(), _MergedLoRA(16, 16), nn.ReLU(), nn.Linear(16, 3))


def test_a_merged_low_rank_layer_is_not_said_to_hold_no_parameters() -> None:
    model = _model()
    assert all(list(model[k].parameters(recurse=False)) for k in (0, 2))  # A and B: parameters of its own
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = layer_causal_map(model, torch.randn(32, 8))
    said = [str(w.message) for w in caught if "computes layers in functional code" in str(w.message)]
    assert len(said) == 1, said
    assert "no parameters of" not in said[0] and "no parameters of" not in OWN_WEIGHTS
    assert "apply their weights in functional code" in said[0]
    assert said[0].endswith("`layers=['0', '2', '4']`")
    assert result.meta["left_out"] == {"0": OWN_WEIGHTS, "2": OWN_WEIGHTS}


def test_the_layers_the_warning_names_map_the_merged_layers() -> None:
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = layer_causal_map(model, torch.randn(32, 8), layers=["0", "2", "4"])
    assert list(result.layers) == ["0", "2", "4"]
