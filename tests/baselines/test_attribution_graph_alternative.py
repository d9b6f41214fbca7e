"""The attribution graph ranks units and edges as its reference causal graph does: by signed mean for
alternative="greater" (the units that support the output), by magnitude for "two-sided", where a unit with a large
negative effect is a node of the causal graph and must be one of the attribution graph too."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines.attribution_graph import attribution_graph
from lightning_causal.causal.structure.graph import causal_graph
from lightning_causal.causal.structure.graph_data import CausalGraph


def _model():
    # after the ReLU, unit u's contribution to the output is w_u * h_u: +x0, -5 x1, +0.2 (x0 + x1)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0, -5.0, 0.2]]))
        model[2].bias.zero_()
    return model


X = torch.rand(16, 2, generator=torch.Generator().manual_seed(0)) + 0.5


@pytest.mark.parametrize(("alternative", "node"), [("greater", "1:0"), ("two-sided", "1:1")])
def test_the_nodes_are_those_the_causal_graph_picks(alternative, node):
    g = causal_graph(_model(), X, ["1"], top_k=1, target=0, alternative=alternative)
    assert [n for n in g.nodes if n.startswith("1:")] == [node]  # the reference: unit 1's effect is -5 x1
    a = attribution_graph(_model(), X, g, target=0)
    assert a.nodes == g.nodes and a.edge_set() == g.edge_set()


def test_edges_are_ranked_by_magnitude_for_a_two_sided_reference():
    like = CausalGraph(["1"], ["1:0", "1:1", "output:0"], [("1:0", "output:0", 1.0)], meta={"alternative": "two-sided"})
    a = attribution_graph(_model(), X, like, target=0)
    assert a.edges[0][0] == "1:1" and a.edges[0][2] == pytest.approx(-1.0)  # the largest |conductance|, its sign kept
