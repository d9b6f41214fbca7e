"""The way that works for a graph neural network (docs/recipes.md, 'Graph neural networks'): the graph is
the sample. One graph: ``GraphAsSample`` runs ``x [B, num_nodes, F]`` as B disjoint copies, and
``output=lambda out: out[:, i]`` explains node ``i``. Many small graphs: ``PaddedGraphs`` takes padded
``[B, max_nodes, F]`` with the adjacency and node mask as per-sample forward arguments. Every number
equals a float64 brute force of full-graph passes. The hidden layers of a one-graph probe fold the
graph's nodes into the batch (``[B·num_nodes, D]``): their units were refused ('at least two distinct
probe samples') since the layout check needed two different samples; a one-sample probe now pairs
its sample with a moved copy, and a layout that interleaves the copies is still refused."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects
from tests.helpers.gnn import (
    GCN,
    GATNet,
    GraphAsSample,
    GraphClassifier,
    PaddedGraphs,
    small_graphs,
    to_padded,
    two_block_graph,
)

NODE = 3


def _model(cls):
    torch.manual_seed(0)
    return cls().double().eval()


def test_input_effects_of_every_node_feature_on_one_node_equal_brute_force():
    x, edge_index = two_block_graph()
    model = _model(GCN)
    n, f = x.shape
    groups = torch.arange(n * f).view(1, n, f)  # group j*F + k: feature k of node j
    effects = input_effects(GraphAsSample(model, edge_index), x[None], groups, target=1,
                            output=lambda out: out[:, NODE], max_batch_size=5)
    with torch.no_grad():
        base = model(x, edge_index)[NODE, 1]
        ref = torch.zeros(n, f, dtype=torch.float64)
        for j in range(n):
            for k in range(f):
                xj = x.clone()
                xj[j, k] = 0.0
                ref[j, k] = base - model(xj, edge_index)[NODE, 1]
    assert int((ref.abs().sum(1) > 0).sum()) > 1  # the node's neighbours matter too
    torch.testing.assert_close(effects[0].view(n, f), ref, rtol=0, atol=1e-12)


def test_hidden_channels_of_one_graph_equal_brute_force():
    x, edge_index = two_block_graph()
    model = _model(GCN)
    effects = unit_effects(GraphAsSample(model, edge_index), x[None], "model.conv1", unit_dim=-1, target=1,
                           output=lambda out: out[:, NODE])
    with torch.no_grad():
        base = model(x, edge_index)[NODE, 1]
        ref = []
        for u in range(5):
            h = model.act(model.conv1(x, edge_index))
            h[:, u] = 0.0  # do(channel u := 0) at every node
            ref.append(base - model.conv2(h, edge_index)[NODE, 1])
    torch.testing.assert_close(effects[0], torch.stack(ref), rtol=0, atol=1e-12)


def test_gat_heads_of_one_graph_equal_brute_force():
    x, edge_index = two_block_graph()
    model = _model(GATNet)
    effects = unit_effects(GraphAsSample(model, edge_index), x[None], "model.gat", unit_dim=-1, num_heads=3,
                           target=0, output=lambda out: out[:, NODE])
    with torch.no_grad():
        base = model(x, edge_index)[NODE, 0]
        ref = []
        for head in range(3):
            z = model.gat(x, edge_index)
            z[:, 2 * head:2 * head + 2] = 0.0
            ref.append(base - model.head(model.act(z))[NODE, 0])
    torch.testing.assert_close(effects[0], torch.stack(ref), rtol=0, atol=1e-12)


def test_padded_small_graphs_are_samples_with_their_adjacency():
    x, edge_index, batch = small_graphs()
    model = _model(GraphClassifier)
    xp, adj, mask = to_padded(x, edge_index, batch)
    wrapped = PaddedGraphs(model)
    effects = input_effects(wrapped, xp, torch.arange(3).expand_as(xp), target=1, additional_forward_args=(adj, mask),
                            max_batch_size=4)
    units = unit_effects(wrapped, xp, "model.head:input", target=1, additional_forward_args=(adj, mask))
    with torch.no_grad():
        base = model(x, edge_index, batch)[:, 1]
        ref = torch.stack([base - model(x.index_fill(1, torch.tensor([k]), 0.0), edge_index, batch)[:, 1]
                           for k in range(3)], 1)
        h = model.conv(x, edge_index).relu()
        pooled = torch.zeros(6, 5, dtype=torch.float64).index_add_(0, batch, h) / torch.bincount(batch)[:, None]
        ref_units = torch.stack([base - model.head(pooled.index_fill(1, torch.tensor([u]), 0.0))[:, 1] for u in range(5)], 1)
    torch.testing.assert_close(effects, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(units, ref_units, rtol=0, atol=1e-12)


class _Interleaved(nn.Module):
    """Folds ``[N, T, D]`` positions first (``[T·N, D]``) at ``fc``: its rows are no samples' blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.head = nn.Linear(2, 3), nn.Linear(3, 2)

    def forward(self, x):
        n, t, d = x.shape
        h = self.fc(x.transpose(0, 1).reshape(t * n, d)).view(t, n, 3).transpose(0, 1)
        return self.head(h.mean(1))


def test_a_one_sample_probe_still_refuses_a_layout_that_interleaves_samples():
    torch.manual_seed(0)
    model = _Interleaved().double().eval()
    with pytest.raises(ValueError, match=r"rows interleaved or changed"):
        unit_effects(model, torch.randn(1, 4, 2, dtype=torch.float64), "fc", unit_dim=-1, target=1)
    with pytest.raises(ValueError, match=r"at least two distinct probe samples"):  # integer inputs: no moved copy
        unit_effects(nn.Sequential(nn.Embedding(5, 2), _Interleaved()).double(), torch.tensor([[1, 2, 3]]), "1.fc",
                     unit_dim=-1, target=1)


class _Codes(nn.Module):
    """Node types as float codes cast inside (``x[..., 0].long()``), folded positions first: ``1 - x / 2`` of
    code 4 is -1, no index of the embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.fc, self.head = nn.Embedding(5, 2), nn.Linear(2, 3), nn.Linear(3, 2)

    def forward(self, x):
        n, t, _ = x.shape
        h = self.fc(self.emb(x[..., 0].long()).reshape(n * t, 2)).view(n, t, 3)
        return self.head(h.mean(1))


def test_a_moved_copy_the_model_refuses_is_reported_as_the_missing_second_sample():
    model = _Codes().double().eval()
    with pytest.raises(ValueError, match=r"at least two distinct probe samples.*moved copy 1 - x / 2.*IndexError"):
        unit_effects(model, torch.tensor([[[4.0], [1.0], [2.0]]], dtype=torch.float64), "fc", unit_dim=-1, target=1)


def test_the_graph_refusing_a_folded_node_layer_names_the_dense_batched_way():
    from lightning_causal.causal import causal_graph

    x, edge_index = two_block_graph()
    with pytest.raises(ValueError, match=r"folds its nodes \(\[B·num_nodes, D\]\): write its layers on dense batches"):
        causal_graph(GraphAsSample(_model(GCN), edge_index), x[None], ["model.conv1"], unit_dim=-1, target=1,
                     output=lambda out: out[:, NODE])


def test_the_layer_map_of_default_node_layers_names_the_dense_batched_way():
    from lightning_causal.causal import layer_causal_map

    x, edge_index = two_block_graph()
    with pytest.warns(UserWarning, match="leaves out the modules"), \
            pytest.raises(ValueError, match=r"none of .*folds its nodes \(\[B·num_nodes, D\]\)"):
        layer_causal_map(GraphAsSample(_model(GCN), edge_index), x[None], torch.arange(3).expand(1, 16, 3),
                         output=lambda out: out[:, NODE])


class _DenseBatched(nn.Module):
    """A GCN written on dense batches: ``x [B, N, F]``, ``adj [B, N, N]`` -> ``[B, N, C]``; every layer ``[B, N, D]``."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.l2 = nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)

    def forward(self, x, adj):
        return adj @ self.l2(self.act(self.l1(adj @ x)))


def test_a_dense_batched_gnn_has_its_channels_for_units_the_graph_and_the_layer_map():
    from lightning_causal.causal import causal_graph, layer_causal_map

    x, edge_index = two_block_graph()
    adj = torch.zeros(16, 16, dtype=torch.float64)
    adj[edge_index[0], edge_index[1]] = 1.0
    adj = (adj + torch.eye(16, dtype=torch.float64)) / (adj.sum(1, keepdim=True) + 1)
    model = _model(_DenseBatched)
    node = dict(target=1, output=lambda out: out[:, NODE], additional_forward_args=(adj[None],))
    units = unit_effects(model, x[None], "act", unit_dim=-1, **node)
    with torch.no_grad():
        h = model.act(model.l1(adj @ x))
        base = (adj @ model.l2(h))[NODE, 1]
        ref = torch.stack([base - (adj @ model.l2(h.index_fill(1, torch.tensor([u]), 0.0)))[NODE, 1] for u in range(5)])
    torch.testing.assert_close(units[0], ref, rtol=0, atol=1e-12)
    graph = causal_graph(model, x[None], ["l1", "act"], top_k=3, alpha=1.0, min_share=0.0, unit_dim=-1, **node)
    assert any(src.startswith("act:") and dst.startswith("output:") for src, dst, _ in graph.edges)
    assert layer_causal_map(model, x[None], torch.arange(3).expand(1, 16, 3), **node).layers == ["l1", "l2"]
