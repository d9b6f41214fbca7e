"""Second look at 77b7a988 (a1a9388f's check): ``causal_graph`` refuses a forward that differentiates through a chosen
layer (``torch.func.grad``), seen as the output changing when the layer gives back its own values as constants. The
check ran on the probe's first two rows only: a model whose forces go through the layer only where a gate is open
(``relu(z0)``, closed on rows 0-1) passed it and got a graph of the clamps' zero derivatives (no edge, faithfulness 0),
while the same rows in the other order were refused. The check now runs on every probe row."""

import pytest
import torch
from torch import nn
from torch.func import grad

from lightning_causal.causal import causal_graph


class _GatedForces(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.H = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        gate = torch.relu(z[:, 0]).detach()  # 0 on rows whose z0 < 0: no force through H there
        d = grad(lambda zb: (self.H(zb).squeeze(-1) * gate).sum())(z)
        return torch.stack([d[:, 1], -d[:, 0]], 1) + 0.01 * z


def _probe() -> torch.Tensor:
    z = torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
    z[:, 0] = z[:, 0].abs() + 0.1
    z[:2, 0] = -z[:2, 0]  # the gate closed on rows 0-1
    return z


@pytest.mark.parametrize("flip", [False, True])
def test_a_forward_differentiating_through_the_layer_on_later_rows_only_is_refused(flip: bool) -> None:
    torch.manual_seed(0)
    z = _probe().flip(0) if flip else _probe()
    with pytest.raises(ValueError, match=r"layer 'H.1' gives back its own values as constants.*torch\.func\.grad"):
        causal_graph(_GatedForces().eval(), z, ["H.1"], target=0)


def test_a_layer_the_output_does_not_read_is_no_refusal_and_no_node() -> None:
    class Dead(nn.Module):  # a branch computed and dropped: detaching it changes nothing
        def __init__(self) -> None:
            super().__init__()
            self.a, self.dead, self.head = nn.Sequential(nn.Linear(3, 4), nn.ReLU()), nn.Linear(3, 4), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.dead(x)
            return self.head(self.a(x))

    torch.manual_seed(0)
    graph = causal_graph(Dead().eval(), torch.randn(16, 3, generator=torch.Generator().manual_seed(2)), ["dead", "a.1"],
                         target=0, top_k=None)
    assert graph.nodes and not any(node.startswith("dead:") for node in graph.nodes)
