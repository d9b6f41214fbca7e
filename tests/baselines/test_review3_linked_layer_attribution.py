"""Captum's layer methods (layer_attribute, input_layer_attribute) on the nodes of one graph
(``model(x, edge_index)``): attribute() refuses them before Captum expands the inputs and not the
graph (e334bed), but the layer methods ran 1-row site checks and Captum's expanded passes on the
cut graph: an IndexError on CPU, a device-side assert on a GPU. Refused now from passes of every
row, with the graph hint; a graph over each sample's features still runs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lightning_causal.baselines.captum_methods import layer_attribute
from lightning_causal.baselines.input_layer_methods import input_layer_attribute
from tests.helpers.linked_nodes import FeatureMLP, NodeMLP, record_rows


class NodeTypes(nn.Module):
    """Nodes given as type ids [N, 1] through an embedding, read with their neighbours' rows."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.out = nn.Embedding(5, 3), nn.Linear(3, 2)
        record_rows(self)

    @property
    def rows_seen(self) -> list[int]:
        return self._rows()

    def forward(self, ids: Tensor, edge_index: Tensor) -> Tensor:
        h = self.emb(ids)[:, 0]
        src, dst = edge_index
        return self.out(h + torch.zeros_like(h).index_add_(0, dst, h[src]))


def _edges(n: int) -> Tensor:
    return torch.stack([torch.arange(n), (torch.arange(n) + 5) % n])


def test_layer_attribution_of_the_nodes_of_one_graph_is_refused_before_any_smaller_pass() -> None:
    model, x = NodeMLP().eval(), torch.randn(12, 3, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"reverse order.*Graph neural networks"):
        layer_attribute(model, x, "hidden", target=0, additional_forward_args=(_edges(12),))
    assert min(model.rows_seen) == 12


def test_input_layer_attribution_of_the_nodes_of_one_graph_is_refused_before_any_smaller_pass() -> None:
    model, ids = NodeTypes().eval(), torch.randint(0, 5, (12, 1), generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match=r"reverse order.*Graph neural networks"):
        input_layer_attribute(model, ids, "emb", "LayerIntegratedGradients", target=0, additional_forward_args=(_edges(12),))
    assert min(model.rows_seen) == 12


def test_a_graph_over_each_sample_s_features_still_runs() -> None:
    model = FeatureMLP().double().eval()
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    got = layer_attribute(model, x, "hidden", "LayerActivation", additional_forward_args=(edge_index,))
    with torch.no_grad():
        want = model.hidden(model.mixed(x, edge_index))
    torch.testing.assert_close(got, want)
