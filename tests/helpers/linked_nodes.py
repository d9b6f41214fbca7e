"""Models whose samples are the nodes of one graph (``model(x, edge_index)``), recording the rows of
each pass (a pass of fewer rows than nodes indexes rows it does not hold: on a GPU, a device-side
assert), and one whose graph links each sample's features (``edge_index`` names columns)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def record_rows(module: nn.Module) -> None:
    """Record the rows of the first input of every pass of ``module`` (read back by ``module._rows()``) in a list
    the module does not hold: an audit puts back the lists a model holds, as every other state its passes changed."""
    rows: list[int] = []
    module.register_forward_pre_hook(lambda _module, args: rows.append(args[0].shape[0]))
    module._rows = lambda: rows


class NodeMLP(nn.Module):
    """Each node's output reads its neighbours' rows (named by ``edge_index``); ``rows_seen`` holds
    the rows of every pass (``record_rows``)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.out = nn.Linear(3, 4), nn.Linear(4, 2)
        record_rows(self)

    @property
    def rows_seen(self) -> list[int]:
        return self._rows()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
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
