"""Review of 8e37accf (a dict the model writes into in forward): the fx split traces a shallow copy of the model,
which shares the model's dict attributes, so a cache the forward writes into and reads (``prev = self.cache.get("h")``,
``self.cache["h"] = h``) kept the trace's ``Proxy``, and the next real pass returned a ``Proxy``: unit_effects and
UnitImportanceAudit stopped with "Expected the model to return a tensor ... but got Proxy". The trace's writes are put
back; the effects are those of the same network without the read."""

import warnings

import torch
from torch import nn

from lightning_causal.causal import causal_graph, unit_effects


class _ReadsItsCache(nn.Module):
    def __init__(self, read: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)
        self.cache: dict[str, torch.Tensor] = {}
        self.read = read

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        prev = self.cache.get("h")
        self.cache["h"] = h.detach()
        out = self.b(h)
        return out + 0 * prev.sum() if self.read and prev is not None else out


def test_the_fx_split_leaves_no_proxy_in_a_cache_the_forward_reads() -> None:
    x = torch.randn(6, 3)
    model = _ReadsItsCache().eval()
    with torch.no_grad():
        model(x[:2])
    kept = model.cache["h"]
    effects = unit_effects(model, x, "a")
    assert torch.equal(effects, unit_effects(_ReadsItsCache(read=False).eval(), x, "a"))
    assert model.cache["h"] is kept and list(model.cache) == ["h"]


class _ThreeLayers(nn.Module):
    def __init__(self, read: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)
        self.cache: dict[str, torch.Tensor] = {}
        self.read = read

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        prev = self.cache.get("h")
        self.cache["h"] = h.detach()
        out = self.c(torch.relu(self.b(h)))
        return out + 0 * prev.sum() if self.read and prev is not None else out


def test_the_causal_graph_leaves_no_proxy_in_a_cache_the_forward_reads() -> None:
    """``causal_graph``'s bypass check traces the model itself: its Proxy stayed in the cache, and the graph's passes
    stopped with "forward() missing 1 required positional argument: 'x'"."""
    x = torch.randn(16, 3)
    model = _ThreeLayers().eval()
    with torch.no_grad():
        model(x[:2])
    kept = model.cache["h"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = causal_graph(model, x, ["a", "b", "c"])
        reference = causal_graph(_ThreeLayers(read=False).eval(), x, ["a", "b", "c"])
    assert graph.edges == reference.edges and graph.nodes == reference.nodes and graph.node_stats == reference.node_stats
    assert model.cache["h"] is kept
