"""The causal graph's refusal of a forward that differentiates through a chosen layer (``torch.func.grad``: forces
``(dH/dp, -dH/dq)``, a Hamiltonian network) was a check of its own beside the prefix cache's, and gave back as
constants only layers returning a tensor: a layer returning a tuple (``(h, aux)``, an attention's ``(out, weights)``),
whose element 0 the graph's units are, was never given as constants, and the graph of its clamps was built without a
word. One check (``engine/layer_constants.constants_verdict``) now serves the prefix cache and the graph, giving
element 0 of a tuple as a constant as the prefix cache's runs do."""

import pytest
import torch
from torch import nn
from torch.func import grad

from lightning_causal.causal import causal_graph
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.layer_constants import constants_verdict


class _Pair(nn.Module):
    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tanh(h), h.mean(1)


class _First(nn.Module):
    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return pair[0]


class _Hamiltonian(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.H = nn.Sequential(nn.Linear(2, 8), _Pair(), _First(), nn.Linear(8, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            d = grad(lambda zb: self.H(zb).sum())(z)
        return torch.stack([d[:, 1], -d[:, 0]], 1)


def _setup() -> tuple[_Hamiltonian, torch.Tensor]:
    torch.manual_seed(0)
    return _Hamiltonian().eval(), torch.randn(8, 2, generator=torch.Generator().manual_seed(1))


def test_a_layer_returning_a_tuple_is_refused_in_a_torch_func_grad_forward() -> None:
    model, z = _setup()
    with pytest.raises(ValueError, match=r"layer 'H.1' gives back its own values as constants.*torch\.func\.grad"):
        causal_graph(model, z, ["H.1"], target=0)
    assert causal_graph(model.H, z, ["1"], target=0).meta["samples"] == 8  # the energy network itself: built


def test_one_verdict_for_both() -> None:
    model, z = _setup()
    with torch.no_grad():
        assert constants_verdict(Forward(model), (z,), [model.H[1]]).kind == "changes"
        assert constants_verdict(Forward(model), (z,), [model.H[0], model.H[3]]).kind == "changes"
        assert constants_verdict(Forward(model.H), (z,), [model.H[1]]).kind == "same"
