"""Estimators over output columns (causal graphs, their faithfulness, the layer map) take a scalar
regression's ``[N]`` output as one column, as the effects estimators do."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, layer_causal_map
from lightning_causal.causal.structure.faithfulness import graph_faithfulness


class Regressor(nn.Module):
    def __init__(self, column: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU())
        self.head = nn.Linear(5, 1)
        self.column = column

    def forward(self, x):
        out = self.head(self.body(x))
        return out if self.column else out.squeeze(1)


def test_graph_and_layer_map_of_a_scalar_regression_equal_those_of_its_column():
    """`[N]` outputs were refused ("Expected a model returning [N, outputs]") by the graph and layer map only."""
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    scalar, column = Regressor(False).eval(), Regressor(True).eval()
    options = dict(top_k=None, alpha=0.5, min_share=0.0, ablation="zero")
    got, want = causal_graph(scalar, x, ["body.1", "body.3"], **options), causal_graph(column, x, ["body.1", "body.3"], **options)
    assert got.edges and got.nodes == want.nodes and got.edges == want.edges
    assert got.meta["faithfulness"] == pytest.approx(want.meta["faithfulness"])
    assert graph_faithfulness(scalar, x, got, ablation="zero")["faithfulness"] == pytest.approx(want.meta["faithfulness"])
    a, b = layer_causal_map(scalar, x), layer_causal_map(column, x)
    assert a.layers == b.layers
    torch.testing.assert_close(a.cka, b.cka)
