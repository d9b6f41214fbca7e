"""A prototypical network whose ``forward(x, support_x, support_y)`` embeds the queries and the support set with one
module: ``unit_effects`` on that module (``UnitImportanceAudit``) refused it as "a module shared across inputs of other
shapes (rows flattened into the batch)", which names no support set. The refusal now says the module also runs on a
forward argument's rows, whose prototypes an intervention would move, and names the way: the prototypes kept as a buffer,
with which the queries' units are explained (checked against a hand loop of zeroed units)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import mark_whole, unit_effects


class ProtoNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))

    def prototypes(self, support_x: torch.Tensor, support_y: torch.Tensor) -> torch.Tensor:
        s = self.embed(support_x)
        return torch.stack([s[support_y == c].mean(0) for c in range(3)])

    def forward(self, x, support_x, support_y):
        return -torch.cdist(self.embed(x), self.prototypes(support_x, support_y)) ** 2


class Queries(nn.Module):
    """The recipe: the prototypes computed once, a buffer; the queries alone go through the embedding."""

    def __init__(self, net: ProtoNet, support_x: torch.Tensor, support_y: torch.Tensor) -> None:
        super().__init__()
        self.embed = net.embed
        with torch.no_grad():
            self.register_buffer("protos", net.prototypes(support_x, support_y))

    def forward(self, x):
        return -torch.cdist(self.embed(x), self.protos) ** 2


def test_an_embedding_run_on_the_support_set_is_refused_naming_the_prototypes_buffer():
    g = torch.Generator().manual_seed(0)
    x, support_x, support_y = torch.randn(30, 4, generator=g), torch.randn(15, 4, generator=g), torch.arange(3).repeat(5)
    net = ProtoNet().eval()
    with pytest.raises(ValueError, match=r"\[15, 8\].*support set.*keep them as a buffer"):
        unit_effects(net, x, "embed.1", additional_forward_args=mark_whole((support_x, support_y), [0, 1]))
    queries = Queries(net, support_x, support_y).eval()
    effects = unit_effects(queries, x, "embed.1", target=0)
    with torch.no_grad():
        clean = queries(x)[:, 0]
        for u in range(8):
            handle = queries.embed[1].register_forward_hook(lambda m, i, o, u=u: o.index_fill(1, torch.tensor([u]), 0.0))
            try:
                torch.testing.assert_close(effects[:, u], clean - queries(x)[:, 0])
            finally:
                handle.remove()
