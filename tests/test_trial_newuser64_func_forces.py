"""newuser64 trial: a Hamiltonian network whose forward returns ``(dH/dp, -dH/dq)`` by ``torch.func.grad`` of a
learned scalar ``H(q, p)``. ``unit_effects(method="attribution")`` (and ``screen=``) on a layer of ``H`` is refused,
rightly (the estimates run the model on from the layer's values given as constants, through which ``torch.func.grad``
finds no path to the inputs and returns 0), but the refusal named only causes the model does not have: "the forward
cuts the gradient after the layer (a .detach() or torch.no_grad(), or a step such as (h > 0).float() ...)". It now
names ``torch.func.grad`` of the inputs in forward too; the way out, ``method='exact'``, gives a hand ``do()``'s
effects.

``causal_graph`` on such a model raised nothing: its paths clamp layers to cached constants, through which
``torch.func.grad`` returns a derivative of 0, so it built a graph of those clamps (of a 2-32-32-1 network, edges of
weight 1.0, logit_graph 0: /tmp/newuser64/hnn_graph.py). It is now refused, naming the exact unit effects; a plain network's graph is
unchanged (no layer whose constants change the output)."""

import pytest
import torch
from torch import nn
from torch.func import grad

from lightning_causal.causal import Zero, causal_graph, intervene, unit_effects


class _Hamiltonian(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.H = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z = (q, p) -> (dq/dt, dp/dt) = (dH/dp, -dH/dq)
        with torch.enable_grad():
            d = grad(lambda zb: self.H(zb).sum())(z)
        return torch.stack([d[:, 1], -d[:, 0]], 1)


def _setup() -> tuple[_Hamiltonian, torch.Tensor]:
    torch.manual_seed(0)
    return _Hamiltonian().eval(), torch.randn(6, 2, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("options", [{"method": "attribution"}, {"method": "atp"}, {"screen": 3}])
def test_first_order_refusal_names_torch_func_grad(options: dict) -> None:
    model, z = _setup()
    with pytest.raises(ValueError, match=r"torch\.func\.grad/jacrev/vjp of the inputs in forward") as raised:
        unit_effects(model, z, "H.1", target=0, **options)
    assert "Use method='exact'" in str(raised.value)


def test_the_way_out_gives_a_hand_do() -> None:
    model, z = _setup()
    effects = unit_effects(model, z, "H.1", target=0)  # method='exact'
    clean = model(z)[:, 0].detach()
    for unit in (0, 5):
        with intervene(model, {"H.1": Zero(units=[unit])}):
            hand = clean - model(z)[:, 0].detach()
        torch.testing.assert_close(effects[:, unit], hand)


def test_the_causal_graph_refuses_a_torch_func_grad_forward() -> None:
    model, z = _setup()
    with pytest.raises(ValueError, match=r"layer 'H.1' gives back its own values as constants.*torch\.func\.grad"):
        causal_graph(model, z, ["H.1"], target=0)
    plain = model.H  # the energy network itself: its graph is built as before
    graph = causal_graph(plain, z, ["1"], target=0)
    assert graph.meta["samples"] == 6
