"""Review of 96c5dcfa (its leftover, older than it): a forward replaced on the instance (``model.forward = fn``, a
wrapper scaling the network's output) is what every pass of the model runs, but the plain fx suffix of
``GraphContext.suffix`` (``suffix_module``) is traced from the class's ``forward``, and nothing compared it with the
model: ``causal_graph`` read every run from a layer without the wrapper (edge effects 1.68 against 0.40 in full
passes, 37 edges against 23); a forward hook on the model itself alike. The plain suffix now stands only where it gives the model's output on a probe row."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import causal_graph


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.l2, self.act2, self.head = nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2)

    def forward(self, x, adj):
        return self.head(self.act2(self.l2(self.act(self.l1(adj @ x))))).sum(1)


class Star(Net):
    def forward(self, *a):
        return super().forward(*a)


def _scaled(self, *a):
    return type(self).forward(self, *a) * torch.tensor([3.0, -1.0], dtype=torch.float64)


@pytest.mark.parametrize("cls, way", [(Net, "instance"), (Star, "instance"), (Star, "hook")])
def test_a_graph_of_a_model_whose_forward_is_replaced_on_the_instance_equals_full_passes(cls, way, monkeypatch):
    torch.manual_seed(0)
    model = cls().double().eval()
    if way == "instance":
        model.forward = types.MethodType(_scaled, model)
    else:  # a forward hook on the model itself: not in the traced graph either
        model.register_forward_hook(lambda m, i, o: o * torch.tensor([3.0, -1.0], dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    x, adj = torch.randn(32, 4, 3, generator=g, dtype=torch.float64), torch.rand(32, 4, 4, generator=g, dtype=torch.float64)
    kw = {"top_k": None, "unit_dim": -1, "additional_forward_args": (adj,), "alpha": 0.5, "min_share": 0.0}
    got = causal_graph(model, x, ["act", "act2"], **kw)
    monkeypatch.setattr(graph_context.GraphContext, "suffix", lambda self, layer, total_rows=0: None)
    full = causal_graph(model, x, ["act", "act2"], **kw)
    assert [e[:2] for e in got.edges] == [e[:2] for e in full.edges] and len(full.edges) > 0  # before: 37 vs 23
    assert [s["effect"] for s in got.edge_stats] == pytest.approx([s["effect"] for s in full.edge_stats], abs=1e-12)
