"""Review of f947ab55 (graph_context.FxTraces, the torch.fx traces graph_stability's graphs share): its key compared
module names by identity, and named_modules builds a nested module's name ("0.1", "enc.layers.0") afresh at each call,
so no model with nested modules ever reused a trace; and it left out the module attributes the trace specialises (a
flag the forward branches on), so a flag a forward pass sets from its data served the first graph's branch to later
graphs whose model took the other. Names and such attributes are compared by value, other objects by identity."""

from __future__ import annotations

import json
import warnings

import torch
from torch import nn

from lightning_causal.causal.engine.suffix import suffix_module
from lightning_causal.causal.structure import graph as graph_module
from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import graph_stability
from lightning_causal.causal.structure.graph_context import FxTraces


def _graphs(monkeypatch, model, x, layers, *, cached, **options):
    """graph_stability's result and its graphs (to_dict, as JSON), with the shared traces or every answer made afresh."""
    built, graph = [], graph_module._graph
    monkeypatch.setattr(graph_module, "_graph", lambda *a, **k: built.append(graph(*a, **k)) or built[-1])
    if not cached:
        monkeypatch.setattr(FxTraces, "answer", lambda self, kind, model, layers, call, make: make())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = graph_stability(model, x, layers, resamples=3, seed=5, **options)
    monkeypatch.undo()
    return result, [json.dumps(g.to_dict(), sort_keys=True, default=str) for g in built]


def test_a_nested_model_traces_each_suffix_once(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Sequential(nn.Linear(8, 8), nn.ReLU()),
                          nn.Linear(8, 3)).double().eval()
    x = torch.randn(40, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    traced, suffix = [], graph_context.suffix_module
    monkeypatch.setattr(graph_context, "suffix_module", lambda m, layer, call=None: traced.append(layer) or suffix(m, layer, call))
    built, graph = [], graph_module._graph
    monkeypatch.setattr(graph_module, "_graph", lambda *a, **k: built.append(graph(*a, **k)) or built[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph_stability(model, x, ["0.1", "1.1"], resamples=3, seed=5)
    assert len(built) == 7  # the reference, three resamples, three noisy copies
    assert sorted(traced) == ["0.1", "1.1"]  # before: each graph traced both again (14)
    monkeypatch.undo()
    assert _graphs(monkeypatch, model, x, ["0.1", "1.1"], cached=True) == _graphs(monkeypatch, model, x, ["0.1", "1.1"], cached=False)


class _Flagged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.r, self.b = nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)
        self.clamp: bool | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.clamp is None:  # set from the first batch the model sees (audit_mode puts the None back after a graph)
            self.clamp = bool(x[:, 0].max() > 2.5)
        h = self.r(self.a(x))
        return self.b(h.clamp(min=0) if self.clamp else h)  # a no-op on the clean rows: only interventions below 0 see it


def test_a_flag_set_from_the_data_is_traced_again_not_served_stale(monkeypatch):
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    x[:, 0] = x[:, 0].clamp(max=2.0)
    x[1, 0] = 3.0  # the one sample that sets the flag: the resamples without it run the model unclamped
    model, x = _Flagged().double().eval(), x.double()
    cached = _graphs(monkeypatch, model, x, ["r"], cached=True, baseline=-1.0)
    fresh = _graphs(monkeypatch, model, x, ["r"], cached=False, baseline=-1.0)
    assert len(set(fresh[1])) > 1  # the clamped and the unclamped model give other graphs
    assert cached == fresh  # before: the first graph's clamped trace served the unclamped ones (Jaccard 1.0 for 0.81)


def test_an_attribute_the_trace_specialises_is_part_of_the_key():
    model, x, traces = _Flagged(), torch.randn(5, 4), FxTraces()
    model.clamp = True
    h = -torch.ones(5, 6)

    def get():
        call = ((x,), {})
        return traces.answer("suffix", model, ("r",), call, lambda: suffix_module(model, "r", call))

    clamped = get()
    assert get() is clamped
    model.clamp = False
    unclamped = get()
    assert unclamped is not clamped and torch.allclose(unclamped(h), model.b(h))
    model.clamp = True
    assert get() is clamped  # the value, not the object: the same trace again
