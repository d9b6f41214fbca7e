"""Nodes of one graph as samples are refused from a pass of every row in reverse order, before any pass of
fewer rows (which, on a GPU, indexes rows it does not hold: a device-side assert); a graph over a sample's
features passes."""

from __future__ import annotations

import collections

import pytest
import torch
from torch import Tensor, nn

from lightning_causal.causal import input_effects
from tests.helpers.linked_nodes import record_rows


class NodeMean(nn.Module):
    """Each node's output: its own features plus the mean of its neighbours' (rows named by ``edge_index``)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3, 2)
        record_rows(self)

    @property
    def rows_seen(self) -> list[int]:
        return self._rows()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        src, dst = edge_index
        agg = torch.zeros_like(x).index_add_(0, dst, x[src])
        return self.lin(x + agg)


class FeatureGraph(nn.Module):
    """A graph over the 5 features of each sample (``edge_index`` names columns, not rows)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(5, 2)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        src, dst = edge_index
        return self.lin(x + torch.zeros_like(x).index_add_(1, dst, x[:, src]))


def test_nodes_as_samples_are_refused_without_a_smaller_pass():
    n = 12
    edge_index = torch.stack([torch.arange(n), (torch.arange(n) + 5) % n])
    model, x = NodeMean(), torch.randn(n, 3, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"run in reverse order gave other outputs.*Graph neural networks"):
        input_effects(model, x, target=0, additional_forward_args=(edge_index,))
    assert min(model.rows_seen) == n  # no pass held fewer rows than the graph's nodes


def test_a_graph_over_each_sample_s_features_passes():
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    model, x = FeatureGraph().double(), torch.randn(6, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    effects = input_effects(model, x, target=1, additional_forward_args=(edge_index,))
    with torch.no_grad():
        base = model(x, edge_index)[:, 1]
        by_hand = torch.stack([base - model(x.index_fill(1, torch.tensor([j]), 0.0), edge_index)[:, 1] for j in range(5)], 1)
    torch.testing.assert_close(effects, by_hand, atol=1e-12, rtol=0)


Graph = collections.namedtuple("Graph", ["edge_index"])


class NestedNodeMean(NodeMean):
    """:class:`NodeMean` reading ``edge_index`` from a named tuple's field."""

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        return super().forward(x, graph.edge_index)


def test_an_edge_index_nested_in_a_named_tuple_is_refused_without_a_smaller_pass_and_named():
    # before: only top-level arguments were looked at; a pass of 2 of the 12 nodes ran (IndexError on the CPU, a
    # device-side assert on a GPU) and the error named no argument
    n = 12
    edge_index = torch.stack([torch.arange(n), (torch.arange(n) + 5) % n])
    model, x = NestedNodeMean(), torch.randn(n, 3, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"run in reverse order gave other outputs.*the positional forward argument 0's field "
                                         r"'edge_index' \(integer, shape \[2, 12\], values in \[0, 12\)\)"):
        input_effects(model, x, target=0, additional_forward_args=(Graph(edge_index),))
    assert min(model.rows_seen) == n
