"""Review of 2da79631 (the layer map's note on layers computed in functional code): the watch took every module of
torch's own for a layer whose insides are its business, nn.Sequential too, so a dynamic filter or a hypernetwork's
layer of the user's class inside an nn.Sequential (`self.features = nn.Sequential(conv, relu, DynConv())`, the usual
way to stack layers) or a model that is an nn.Sequential got no note: its F.conv2d was counted as the Sequential's.
A module of torch's own keeps its own functional calls (nn.MultiheadAttention's F.linear), not its children's."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import layer_causal_map

NOTE = "The layer map reads modules only, and the model computes layers in functional code outside them"


class _DynConv(nn.Module):  # per-sample 3x3 kernels made from each image's channel means, applied with F.conv2d
    def __init__(self) -> None:
        super().__init__()
        self.kgen = nn.Linear(4, 4 * 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        k = self.kgen(x.mean((2, 3))).view(n * 4, 1, 3, 3)
        return F.conv2d(x.reshape(1, n * 4, 8, 8), k, padding=1, groups=n * 4).view(n, 4, 8, 8)


class _Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), _DynConv(), nn.ReLU())
        self.head = nn.Linear(4 * 64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def _notes(model: nn.Module, x: torch.Tensor) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer_causal_map(model, x)
    return [str(w.message) for w in caught if NOTE in str(w.message)]


@pytest.mark.parametrize("root", ["module", "sequential"])
def test_a_dynamic_filter_inside_an_nn_sequential_is_named(root: str) -> None:
    torch.manual_seed(0)
    model = _Features() if root == "module" else nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), _DynConv(), nn.Flatten(), nn.Linear(4 * 64, 3))
    notes = _notes(model.eval(), torch.randn(12, 1, 8, 8))
    assert len(notes) == 1 and "F.conv2d in _DynConv.forward (1 call per pass)" in notes[0]


def test_torch_modules_inside_an_nn_sequential_keep_their_own_calls() -> None:
    torch.manual_seed(0)  # nn.MultiheadAttention calls F.linear with its out_proj's weight: its own business
    model = nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), nn.Flatten(), nn.Linear(40, 2)).eval()
    assert _notes(model, torch.randn(12, 5, 8)) == []
