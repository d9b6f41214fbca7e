"""Review of the change (git diff fb3266c), newuser20's validation sweep: two checks that covered one path of two.

graph_faithfulness refused a graph whose *nodes* name units beyond a layer's width (d2e1b20), but an *edge* from
such a unit (a graph's edges need not be listed in its nodes) was dropped by ``_in_masks`` without a word and the
faithfulness came out as if the graph held nothing (-0.0 here). replace_units refused one unit for several rows
(7e97628), while replace_units_ broadcast it to every row, silently."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import graph_faithfulness
from lightning_causal.causal.engine.ablation import replace_units, replace_units_
from lightning_causal.causal.structure.graph_data import CausalGraph


def test_an_edge_from_a_unit_beyond_the_layer_is_refused_as_a_node_beyond_it_is():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    edge_only = CausalGraph(["1"], [], [("1:5", "output:0", 1.0)])  # unit 5 of a layer of 2, named by an edge alone
    with pytest.raises(ValueError, match=r"`graph` to hold units 0 to 1 of layer '1' \(2 units in this model\) but got \['1:5'\]"):
        graph_faithfulness(model, x, edge_only, target=0, ablation="zero")
    with torch.no_grad():  # a graph within the layer is taken: the docstring's example, F = 0.8 by hand
        model[0].weight.copy_(torch.eye(2)), model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[2.0, 1.0], [0.0, 0.0]])), model[2].bias.zero_()
    inside = CausalGraph(["1"], ["1:0", "output:0"], [("1:0", "output:0", 1.0)])
    got = graph_faithfulness(model, torch.tensor([[1.0, 1.0], [3.0, 1.0]]), inside, target=0, ablation="zero")
    assert got["faithfulness"] == pytest.approx(0.8)


def test_replace_units_in_place_takes_one_unit_per_row_as_replace_units_does():
    h = torch.zeros(3, 4)
    for replace in (replace_units, replace_units_):
        with pytest.raises(ValueError, match=r"`units` to hold one unit per row of `h` \(3\) but got \[1\]"):
            replace(h.clone(), torch.tensor([1]), torch.tensor(5.0))
        assert replace(h.clone(), torch.tensor([1, 3, 0]), torch.tensor(5.0)).tolist() == [
            [0, 5, 0, 0], [0, 0, 0, 5], [5, 0, 0, 0]]
