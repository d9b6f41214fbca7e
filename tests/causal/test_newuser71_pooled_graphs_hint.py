"""Graph classification on PyG-style batches (the nodes of many graphs concatenated, ``x [num_nodes, F]``, an
``edge_index`` and a ``batch`` vector, pooled to ``[num_graphs, C]``) is refused, and the refusal used to give the
way of one graph's node outputs only ('make the graph the sample, ... a model of x [B, num_nodes, F] that runs its B
copies of the graph', 'explain a node's output with output='), which cannot explain a graph-level label. Where the
output has fewer rows than the inputs (pooled), the refusal and the callback's probe refusal name the way that works:
pad the graphs, the node mask as ``attention_mask``, docs/recipes.md's many small graphs."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.causal import input_effects


class PooledGNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.head = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x, edge_index, batch):
        src, dst = edge_index
        h = self.lin(x + torch.zeros_like(x).index_add_(0, dst, x[src])).relu()
        num = int(batch.max()) + 1
        pooled = torch.zeros(num, h.shape[1]).index_add_(0, batch, h)
        return self.head(pooled)


def _graphs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=g)  # two graphs: nodes 0-3 and 4-6
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 4, 5, 5, 6], [1, 0, 2, 1, 3, 2, 5, 4, 6, 5]])
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    return x, edge_index, batch


def test_input_effects_names_padding_for_pooled_graphs():
    x, edge_index, batch = _graphs()
    with pytest.raises(ValueError, match="pad them") as info:
        input_effects(PooledGNN().eval(), x, target=1, additional_forward_args=(edge_index, batch))
    assert "attention_mask" in str(info.value) and "many small graphs" in str(info.value)


def test_probe_of_concatenated_nodes_names_padding():
    x, edge_index, batch = _graphs()
    batches = [{"x": x, "edge_index": edge_index, "batch": batch, "y": torch.tensor([0, 1])}]
    data = torch.utils.data.DataLoader(batches, batch_size=None)  # a loader of collated PyG-style batches
    with pytest.raises(MisconfigurationException, match="pad them"):
        audit_model(PooledGNN(), [InputEffectAudit()], data, probe_size=7,
                    unpack_batch=lambda b: (b["x"], b["y"], (b["edge_index"], b["batch"])))
