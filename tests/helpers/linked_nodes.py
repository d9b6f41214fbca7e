"""Models whose samples are the nodes of one graph (``model(x, edge_index)``), recording the rows of
each pass (a pass of fewer rows than nodes indexes rows it does not hold: on a GPU, a device-side
assert), and one whose graph links each sample's features (``edge_index`` names columns)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NodeMLP(nn.Module):
    """Each node's output reads its neighbours' rows (named by ``edge_index``); ``rows_seen`` holds
    the rows of every pass."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.out = nn.Linear(3, 4), nn.Linear(4, 2)
        self.rows_seen: list[int] = []

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        self.rows_seen.append(x.shape[0])
        src, dst = edge_index
        return self.out(torch.relu(self.hidden(x + torch.zeros_like(x).index_add_(0, dst, x[src]))))


class FeatureMLP(nn.Module):
    """A graph over the 5 features of each sample: ``edge_index`` names columns, not rows."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.out = nn.Linear(5, 4), nn.Linear(4, 2)

    def mixed(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The features each sample's hidden layer reads: its own plus their graph neighbours'."""
        src, dst = edge_index
        return x + torch.zeros_like(x).index_add_(1, dst, x[:, src])

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.out(torch.relu(self.hidden(self.mixed(x, edge_index))))
