"""Leftovers of session 28 (item 3): on a model that runs its layers under ``torch.func.vmap`` the layer map refused
with the words for a ``batch_first=False`` layer or an expert of a mixture ('net.0' returned [4] for 6 samples. A layer
built with batch_first=False ...), where every other site names vmap (``unit_sites.check_not_vmapped``). A named layer
is refused in those words now; a default one is left out saying vmap."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.func import vmap

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.layer_activations import VMAPPED

X = torch.tensor([[1.0, 2.0, -1.0], [-1.0, 0.5, 2.0], [0.5, -1.0, 1.0], [2.0, 1.0, 0.5]])


class Mapped(nn.Module):
    """``vmap(net)(x)`` then a head that sees the batch: ``head`` runs outside the transform."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(vmap(self.net)(x))


def test_a_named_layer_under_vmap_is_refused_naming_vmap():
    with pytest.raises(ValueError, match=r"Expected module 'net.0' to run on the batch of samples, but it runs inside "
                                         r"torch.func.vmap.*shape \[4\]") as err:
        layer_causal_map(Mapped(), X, layers=["net.0", "head"])
    assert "batch_first" not in str(err.value)  # before: the batch_first / expert words


def test_default_layers_under_vmap_are_left_out_naming_vmap():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = layer_causal_map(Mapped(), X)  # the head, outside the transform, is mapped
    words = " ".join(str(w.message) for w in caught)
    assert "'net.0' returned [4], one sample's: " + VMAPPED in words and "batch_first" not in words
    assert got.meta["left_out"] == {"net.0": VMAPPED, "net.2": VMAPPED}  # before: NOT_SAMPLES_FIRST ([T, N, ...])
