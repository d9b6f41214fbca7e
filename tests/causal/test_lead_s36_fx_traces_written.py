"""FxTraces (the torch.fx traces graph_stability's graphs share) against fresh traces (the lead, session 36, from a
final read of f947ab55/51d503f5).

The key held buffers and tensor attributes by identity only, and audit_mode puts buffers back in place after every
graph, so an ActNorm-style flag buffer a forward sets from its first batch (``self.clamp.fill_(...)``) kept its object
while its value changed: later graphs were served the first graph's branch (resample_jaccard 1.0 shared against 0.8095
with fresh traces), which _reproduces cannot see on clean rows. Every miss also stored a new entry, so a model keeping a
tensor of each pass (``self.last = h``) pinned one activation a trace until graph_stability returned (27 entries).
"""

from __future__ import annotations

import gc
import json
import warnings
import weakref

import torch
from torch import nn

from lightning_causal.causal.structure import graph as graph_module
from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import graph_stability


class _BufClamp(nn.Module):
    """Clamps its hidden units where its first batch held an x0 above 2.5: a registered flag set in place."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.r, self.b = nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("clamp", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            self.clamp.fill_(bool(x[:, 0].max() > 2.5))
            self.initialized.fill_(True)
        h = self.r(self.a(x))
        if bool(self.clamp):
            h = h.clamp(min=0)
        return self.b(h)


class _Keeps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.r, self.b, self.r2, self.c = nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2)
        self.last = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.r(self.a(x))
        self.last = h
        return self.c(self.r2(self.b(h)))


def _graphs(monkeypatch, model, x, layers, *, fresh: bool, **kw):
    built, graph = [], graph_module._graph
    monkeypatch.setattr(graph_module, "_graph", lambda *a, **k: built.append(graph(*a, **k)) or built[-1])
    if fresh:
        monkeypatch.setattr(graph_context.FxTraces, "answer", lambda self, kind, m, ls, call, make: make())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stability = graph_stability(model, x, layers, resamples=3, seed=5, **kw)
    monkeypatch.undo()
    return stability, [json.dumps(g.to_dict(), sort_keys=True, default=str) for g in built]


def test_a_flag_buffer_written_in_place_is_traced_again(monkeypatch) -> None:
    for row in (0, 1, 7):
        x = torch.randn(40, 4, generator=torch.Generator().manual_seed(row))
        x[:, 0] = x[:, 0].clamp(max=2.0)
        x[row, 0] = 3.0
        x = x.double()
        shared = _graphs(monkeypatch, _BufClamp().double().eval(), x, ["r"], fresh=False, baseline=-1.0)
        fresh = _graphs(monkeypatch, _BufClamp().double().eval(), x, ["r"], fresh=True, baseline=-1.0)
        assert shared == fresh


def test_no_answer_keeps_a_tensor_a_forward_stored_alive(monkeypatch) -> None:
    made, kept, most = [], [], [0]
    init, forward = graph_context.FxTraces.__init__, _Keeps.forward
    monkeypatch.setattr(graph_context.FxTraces, "__init__", lambda self: init(self) or made.append(self))

    def keeping(self, x):  # noqa: ANN001, ANN202
        gc.collect()
        most[0] = max(most[0], sum(r() is not None for r in kept))  # earlier passes' tensors still alive
        out = forward(self, x)
        kept.append(weakref.ref(self.last))
        return out

    monkeypatch.setattr(_Keeps, "forward", keeping)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph_stability(_Keeps().eval(), torch.randn(60, 4, generator=torch.Generator().manual_seed(1)), ["r", "r2"],
                        resamples=4, seed=1)
    assert made and len(made[-1]._answers) > 4  # the premise: every pass stored a new tensor, so answers missed
    assert most[0] <= 2  # before: each stored answer held its pass's self.last (27 activations on a 9-graph call)


def test_shared_traces_equal_fresh_ones_on_a_plain_mlp(monkeypatch) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Sequential(nn.Linear(8, 8), nn.ReLU()),
                          nn.Linear(8, 3)).double().eval()
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(2)).double()
    assert _graphs(monkeypatch, model, x, ["0.1", "1.1"], fresh=False) == \
        _graphs(monkeypatch, model, x, ["0.1", "1.1"], fresh=True)
