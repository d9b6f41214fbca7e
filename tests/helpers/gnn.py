"""Graph neural networks in plain PyTorch (message passing with ``index_add_``), for the GNN tests:
a two-layer GCN-like node classifier ``model(x [num_nodes, F], edge_index) -> [num_nodes, C]``, a
GAT-style layer with heads, a graph classifier with mean pooling ``model(x, edge_index, batch) ->
[num_graphs, C]``, and the two wrappers of docs/recipes.md ('Graph neural networks') that make a graph
the sample: :class:`GraphAsSample` (one graph, ``x [B, num_nodes, F]``) and :class:`PaddedGraphs`
(many small graphs, padded ``[B, max_nodes, F]`` with a dense adjacency and a node mask)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def two_block_graph(n_per: int = 8, features: int = 3, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A two-community stochastic block graph: ``x [2 n_per, F]`` float64 and ``edge_index [2, E]``
    (both directions), feature 0 shifted by the community."""
    g = torch.Generator().manual_seed(seed)
    n = 2 * n_per
    comm = torch.arange(2).repeat_interleave(n_per)
    p = torch.where(comm[:, None] == comm[None, :], 0.5, 0.08)
    a = (torch.rand(n, n, generator=g) < p).triu(1)
    a = a | a.T
    x = torch.randn(n, features, generator=g, dtype=torch.float64)
    x[:, 0] += comm.double()
    return x, a.nonzero().T.contiguous()


def propagate(h: Tensor, edge_index: Tensor) -> Tensor:
    """Mean over each node's in-neighbours and itself."""
    src, dst = edge_index
    out = torch.zeros_like(h).index_add_(0, dst, h[src])
    deg = torch.zeros(h.shape[0], dtype=h.dtype).index_add_(0, dst, torch.ones_like(dst, dtype=h.dtype))
    return (out + h) / (deg + 1)[:, None]


class GCNLayer(nn.Module):
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.lin = nn.Linear(i, o)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.lin(propagate(x, edge_index))


class GCN(nn.Module):
    def __init__(self, features: int = 3, hidden: int = 5, classes: int = 2) -> None:
        super().__init__()
        self.conv1, self.act, self.conv2 = GCNLayer(features, hidden), nn.ReLU(), GCNLayer(hidden, classes)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.conv2(self.act(self.conv1(x, edge_index)), edge_index)


class DenseGCN(nn.Module):
    """``model(x [N, F], adj [N, N])``: the normalised adjacency as a dense matrix."""

    def __init__(self, features: int = 3, hidden: int = 5, classes: int = 2) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(features, hidden), nn.Linear(hidden, classes)

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        return self.l2(adj @ torch.relu(self.l1(adj @ x)))


class GATLayer(nn.Module):
    """Attention over in-neighbours and self, ``heads`` heads of width ``d``: ``[N, heads * d]``."""

    def __init__(self, i: int, d: int, heads: int) -> None:
        super().__init__()
        self.heads, self.d = heads, d
        self.lin = nn.Linear(i, heads * d, bias=False)
        self.att_src, self.att_dst = nn.Parameter(torch.randn(heads, d)), nn.Parameter(torch.randn(heads, d))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n = x.shape[0]
        loops = torch.arange(n)
        src, dst = torch.cat([edge_index[0], loops]), torch.cat([edge_index[1], loops])
        h = self.lin(x).view(n, self.heads, self.d)
        e = nn.functional.leaky_relu((h[src] * self.att_src).sum(-1) + (h[dst] * self.att_dst).sum(-1), 0.2)
        w = (e - e.max()).exp()
        den = torch.zeros(n, self.heads, dtype=x.dtype).index_add_(0, dst, w)
        out = torch.zeros(n, self.heads, self.d, dtype=x.dtype).index_add_(0, dst, (w / den[dst])[..., None] * h[src])
        return out.reshape(n, self.heads * self.d)


class GATNet(nn.Module):
    def __init__(self, features: int = 3, d: int = 2, heads: int = 3, classes: int = 2) -> None:
        super().__init__()
        self.gat, self.act, self.head = GATLayer(features, d, heads), nn.ELU(), nn.Linear(heads * d, classes)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.head(self.act(self.gat(x, edge_index)))


class GraphClassifier(nn.Module):
    """``model(x [num_nodes, F], edge_index, batch [num_nodes]) -> [num_graphs, C]`` (mean pooling)."""

    def __init__(self, features: int = 3, hidden: int = 5, classes: int = 2) -> None:
        super().__init__()
        self.conv, self.head = GCNLayer(features, hidden), nn.Linear(hidden, classes)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        h = self.conv(x, edge_index).relu()
        num = int(batch.max()) + 1
        pooled = torch.zeros(num, h.shape[1], dtype=h.dtype).index_add_(0, batch, h)
        count = torch.zeros(num, dtype=h.dtype).index_add_(0, batch, torch.ones_like(batch, dtype=h.dtype))
        return self.head(pooled / count[:, None])


def small_graphs(num: int = 6, features: int = 3, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """``num`` random graphs of 3-6 nodes batched the usual way: ``x``, ``edge_index``, ``batch``."""
    g = torch.Generator().manual_seed(seed)
    xs, eis, bs, off = [], [], [], 0
    for k in range(num):
        n = int(torch.randint(3, 7, (1,), generator=g))
        a = (torch.rand(n, n, generator=g) < 0.5).triu(1)
        a = a | a.T
        xs.append(torch.randn(n, features, generator=g, dtype=torch.float64))
        eis.append(a.nonzero().T + off)
        bs.append(torch.full((n,), k))
        off += n
    return torch.cat(xs), torch.cat(eis, 1), torch.cat(bs)


class GraphAsSample(nn.Module):
    """A node model ``model(x [num_nodes, F], edge_index)`` with the graph as the sample:
    ``x [B, num_nodes, F] -> [B, num_nodes, C]``, the B copies run as one graph of B disjoint parts."""

    def __init__(self, model: nn.Module, edge_index: Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("edge_index", edge_index)

    def forward(self, x: Tensor) -> Tensor:
        b, n = x.shape[:2]
        copies = torch.arange(b, device=x.device).repeat_interleave(self.edge_index.shape[1]) * n
        edge_index = self.edge_index.repeat(1, b) + copies  # copy k's nodes are k*n ... k*n + n - 1
        return self.model(x.reshape(b * n, *x.shape[2:]), edge_index).view(b, n, -1)


class PaddedGraphs(nn.Module):
    """A graph classifier ``model(x, edge_index, batch) -> [num_graphs, C]`` with each graph as a sample:
    ``x [B, max_nodes, F]``, ``adj [B, max_nodes, max_nodes]`` (0/1), ``node_mask [B, max_nodes]``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, adj: Tensor, node_mask: Tensor) -> Tensor:
        b, m = node_mask.shape
        index = torch.full((b, m), -1, dtype=torch.long, device=x.device)
        index[node_mask] = torch.arange(int(node_mask.sum()), device=x.device)  # a padded slot's flat node id
        g, i, j = (adj * node_mask[:, :, None] * node_mask[:, None, :]).nonzero(as_tuple=True)
        batch = torch.arange(b, device=x.device)[:, None].expand(b, m)[node_mask]
        return self.model(x[node_mask], torch.stack([index[g, i], index[g, j]]), batch)


def to_padded(x: Tensor, edge_index: Tensor, batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The usual batch of graphs as padded ``x [B, max_nodes, F]``, ``adj`` and ``node_mask``."""
    num = int(batch.max()) + 1
    counts = torch.bincount(batch, minlength=num)
    slot = torch.arange(x.shape[0]) - (torch.cumsum(counts, 0) - counts)[batch]
    xp = x.new_zeros(num, int(counts.max()), x.shape[1])
    xp[batch, slot] = x
    mask = torch.zeros(num, int(counts.max()), dtype=torch.bool)
    mask[batch, slot] = True
    adj = x.new_zeros(num, int(counts.max()), int(counts.max()))
    adj[batch[edge_index[0]], slot[edge_index[0]], slot[edge_index[1]]] = 1.0
    return xp, adj, mask
