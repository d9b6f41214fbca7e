"""Review s32c of a1a9388f: ``causal_graph``'s check that each chosen layer given back as constants (``detach``) leaves
the output as it is ran two clean passes and one per layer on every graph (4 passes of 2 rows for a 2-layer MLP graph,
5 for 3 layers: 20 -> 24 passes of a 2-layer graph, ~3.5% of its CPU time). Every layer is now given back at once
first, and each alone only where that changes the output: an ordinary model pays two passes whatever its layers. The
check still refuses a forward differentiating through a layer by ``torch.func.grad``, naming that layer, and also one
by ``torch.func.jvp`` (forward mode, which runs with autograd off, so a gate on grad mode would miss it)."""

import pytest
import torch
from torch import nn
from torch.func import grad, jvp

from lightning_causal.causal import causal_graph


def _count_passes(model: nn.Module) -> list[int]:
    calls = [0]
    model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_an_ordinary_graph_pays_two_check_passes_whatever_its_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    import lightning_causal.causal.structure.graph as graph_module

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(1))
    calls = _count_passes(model)
    passes = {}
    check = graph_module._check_constant_layers

    def counted(*args, **kwargs):
        before = calls[0]
        check(*args, **kwargs)
        passes["check"] = calls[0] - before

    monkeypatch.setattr(graph_module, "_check_constant_layers", counted)
    graph = causal_graph(model, x, ["1", "3", "5"], target=0)
    assert passes["check"] == 2  # clean, every layer constant; before: 2 clean and 3 layers, 5
    assert graph.meta["samples"] == 10


class _Hamiltonian(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.H = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        self.side = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))  # a plain branch: its layers leave it be

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        d = grad(lambda zb: self.H(zb).sum())(z)
        return torch.stack([d[:, 1], -d[:, 0]], 1) + self.side(z)


class _Tangent(nn.Module):  # a directional derivative by forward mode: dH/dz . 1
    def __init__(self) -> None:
        super().__init__()
        self.H = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return jvp(self.H, (z,), (torch.ones_like(z),))[1]


def test_the_layer_differentiated_through_is_named_among_plain_ones() -> None:
    torch.manual_seed(0)
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"layer 'H.1' gives back its own values as constants.*torch\.func\.grad"):
        causal_graph(_Hamiltonian().eval(), z, ["side.1", "H.1"], target=0)
    with pytest.raises(ValueError, match=r"layer 'H.1' gives back its own values as constants"):
        causal_graph(_Tangent().eval(), z, ["H.1"], target=0)
