"""perf_graph_s36: the graphs of one graph_stability call (its resamples and noisy copies) share their torch.fx traces
(graph_context.FxTraces): each layer's plain suffix and each bypass answer traced once, not once a graph, with the
same graphs; a trace is reused only while the model is the tree it was traced from and the call's specialised values
are the same. The resample's repeats reach its graph as an argument (graph._graph's ``copies``), not a ContextVar."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.causal.engine.suffix import suffix_module
from lightning_causal.causal.structure import graph as graph_module
from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import causal_graph, graph_stability
from lightning_causal.causal.structure.graph_context import FxTraces


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def test_graph_stability_traces_each_suffix_and_bypass_once(monkeypatch):
    model, x = _mlp(), torch.randn(40, 4, generator=torch.Generator().manual_seed(1))
    ref = causal_graph(model, x, ["1", "3"])
    traced, bypass = [], []
    suffix, bypassed = graph_context.suffix_module, graph_context.bypassed
    monkeypatch.setattr(graph_context, "suffix_module", lambda m, layer, call=None: traced.append(layer) or suffix(m, layer, call))
    monkeypatch.setattr(graph_context, "bypassed", lambda m, s, t, call=None: bypass.append((s, t)) or bypassed(m, s, t, call))
    built, graph = [], graph_module._graph
    monkeypatch.setattr(graph_module, "_graph", lambda *a, **k: built.append(graph(*a, **k)) or built[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stability = graph_stability(model, x, ["1", "3"], resamples=2, seed=3, reference=ref)
    assert len(built) == 4  # two resamples, two noisy copies
    # before: every graph traced both suffixes and the bypass again (8 and 4)
    assert sorted(traced) == ["1", "3"] and bypass == [("1", "3")]
    monkeypatch.undo()
    assert stability == graph_stability(model, x, ["1", "3"], resamples=2, seed=3, reference=ref)


def _call(x: torch.Tensor, scale: float | None = None):
    return ((x,), {}) if scale is None else ((x,), {"scale": scale})


def test_a_trace_is_reused_only_for_the_tree_and_call_it_was_traced_from():
    model, x = _mlp(), torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    traces, h = FxTraces(), torch.relu(model[2](torch.relu(model[0](x))))

    def get(call=None):
        call = call or _call(x)
        return traces.answer("suffix", model, ("3",), call, lambda: suffix_module(model, "3", call))

    first = get()
    assert get() is first  # the same model and call
    assert get(_call(x[:2])) is first  # other tensors of the same call: the same trace
    with torch.no_grad():
        model[4].weight.mul_(2.0)  # weights changed in place: the suffix reads the model's own
    assert get() is first and torch.allclose(first(h), model[4](h))
    model[4] = nn.Linear(8, 3)  # a module replaced: traced again, and the new module runs
    second = get()
    assert second is not first and torch.allclose(second(h), model[4](h))
    model[4].weight = nn.Parameter(torch.ones(3, 8))  # a weight replaced
    third = get()
    assert third is not second and torch.allclose(third(h), model[4](h))
    model.train()  # another training flag (a forward may branch on it)
    assert get() is not third


class _Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 1)

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.b(torch.relu(self.a(x))) * scale


def test_another_specialised_value_or_a_patched_forward_is_traced_again(monkeypatch):
    model, x, traces = _Scaled(), torch.randn(3, 2, generator=torch.Generator().manual_seed(0)), FxTraces()
    h = model.a(x).detach()
    assert bool((h < 0).any())  # the ReLU after the cut matters

    def get(call):
        return traces.answer("suffix", model, ("a",), call, lambda: suffix_module(model, "a", call))

    two, three = get(_call(x, 2.0)), get(_call(x, 3.0))  # the scale is written into the trace as a constant
    assert two is not three and torch.allclose(three(h), 3.0 * model.b(torch.relu(h))) and get(_call(x, 2.0)) is two
    monkeypatch.setattr(_Scaled, "forward", lambda self, x, scale=1.0: self.b(self.a(x)) * scale)  # the class's code
    assert torch.allclose(get(_call(x, 2.0))(h), 2.0 * model.b(h))
