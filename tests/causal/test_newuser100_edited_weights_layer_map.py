"""newuser100: weights edited or merged by hand (task arithmetic, a ROME-style edit stored as a delta). A layer of the
user's own that applies its weights in functional code, `F.linear(x, self.base_w + self.alpha * self.delta)` from
buffers, or `F.linear(x, self.lin.weight + self.alpha * self.delta)` from a child's weight, holds no parameter of its
own, so the layer map's default layers (modules with parameters) left it out, and the warning told the user to pass the
layer's output through an nn.Identity, when the module itself returns that output and only needs naming. The warning
now names those modules and the `layers=` that maps them with the default layers, in forward order; the map's
meta["left_out"] keys them by name. A call whose output the module does not return keeps the nn.Identity advice."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.functional_layers import FUNCTIONAL, OWN_WEIGHTS

NOTE = "The layer map reads modules only"


class _DeltaLinear(nn.Module):  # merged weights held as buffers: w = base_w + alpha * delta (a task vector)
    def __init__(self, i: int, o: int, alpha: float = 0.7) -> None:
        super().__init__()
        self.register_buffer("base_w", torch.randn(o, i) / i**0.5)
        self.register_buffer("delta", torch.randn(o, i) / i**0.5)
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.base_w + self.alpha * self.delta)


class _EditedLinear(nn.Module):  # a child's weight plus an edit kept in a buffer, applied in functional code
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.lin = nn.Linear(i, o)
        self.register_buffer("delta", torch.randn(o, i) / i)
        self.alpha = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.lin.weight + self.alpha * self.delta, self.lin.bias)


class _ReluInside(nn.Module):  # the call's output is not what the module returns: no layer of its own to name
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w", torch.randn(16, 8) / 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.linear(x, self.w)) * 1.0


def _map(model: nn.Module, **kwargs: object):  # noqa: ANN202
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = layer_causal_map(model.eval(), torch.randn(24, 8, generator=torch.Generator().manual_seed(0)), **kwargs)
    return result, [str(w.message) for w in caught if NOTE in str(w.message)]


def test_buffer_layers_are_named_with_the_layers_that_map_them() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(_DeltaLinear(8, 16), nn.ReLU(), _DeltaLinear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    result, notes = _map(model)
    assert len(notes) == 1 and "the modules ['0', '2'] return" in notes[0], notes
    assert "`layers=['0', '2', '4']`" in notes[0] and "nn.Identity" not in notes[0]
    assert result.meta["left_out"] == {"0": OWN_WEIGHTS, "2": OWN_WEIGHTS}
    named, again = _map(model, layers=["0", "2", "4"])  # the advice, followed: every layer in the map, no note
    assert again == [] and sum(len(node["layers"]) for node in named.to_dict()["nodes"]) == 3


def test_a_childs_weight_plus_an_edit_is_named() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), _EditedLinear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    result, notes = _map(model)  # "2.lin" never runs: its weight is read by "2"'s forward
    assert len(notes) == 1 and "`layers=['0', '2', '4']`" in notes[0], notes
    assert result.meta["left_out"] == {"2": OWN_WEIGHTS}


def test_a_call_the_module_does_not_return_keeps_the_identity_advice() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(_ReluInside(), nn.Linear(16, 3))
    result, notes = _map(model)
    assert len(notes) == 1 and "nn.Identity" in notes[0] and "layers=[" not in notes[0], notes
    assert result.meta["left_out"] == {"F.linear in _ReluInside.forward": FUNCTIONAL}
