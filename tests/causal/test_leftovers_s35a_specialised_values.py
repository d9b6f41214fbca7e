"""The fx split and the plain fx suffix, given a call (leftovers_s35a):

- a tuple, list or dict of Python scalars (``dims=(1,)``, ``sizes=[1, 2]``, a default as much as a passed value) was
  refused, so a model with such a default lost the fast path (``unit_effects`` on the hooks path, ``causal_graph``
  with more rows through its first layer): it is specialised as a number is, baked into the flat forward;
- the same ``**kwargs`` keys in another order stay refused: a forward may read them in order, so the order is part of
  what the graph computes;
- a forward replaced on the instance is refused from one source, the class's forward torch.fx traces (the binding
  took the signature from the instance and the function from the class): ``bypassed`` read the class's graph and said
  no path avoids the next layer where the instance's forward adds one."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.suffix import SplitRefused, fx_split, suffix_module
from lightning_causal.causal.scm.fairness import carrier_unit_effects
from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import causal_graph
from lightning_causal.causal.structure.graph_context import bypassed


class Pooled(nn.Module):
    """``forward(x [B, T, 3], dims=(1,), sizes=[1, 2])``: the defaults a tuple and a list of ints."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.l2, self.act2, self.head = nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2)

    def forward(self, x, dims=(1,), sizes=[1, 2], mode={"scale": 2.0}):  # noqa: B006 - never mutated
        h = self.act2(self.l2(self.act(self.l1(x)))).mean(dims)
        return self.head(h)[:, [s - 1 for s in sizes]] * mode["scale"]


def _model(cls):
    torch.manual_seed(0)
    return cls().double().eval()


X = torch.randn(10, 4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _rows_through(model, layer):
    rows = []
    return rows, getattr(model, layer).register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))


@pytest.mark.parametrize("afa", [None, ((1,), [2, 1]), {"dims": [1], "mode": {"scale": -1.0}}])
def test_unit_effects_of_a_forward_given_containers_of_scalars_take_the_fx_split_and_equal_full_passes(afa):
    model = _model(Pooled)
    got, info = unit_effects(model, X, "act", target=0, unit_dim=-1, additional_forward_args=afa, return_info=True)
    full = unit_effects(model, X, "act", target=0, unit_dim=-1, additional_forward_args=afa, use_suffix=False)
    assert info.path == "fx", info.reason  # before: "hooks" ('dims' is a tuple, which torch.fx specialises ...)
    torch.testing.assert_close(got, full, atol=1e-12, rtol=0)


def test_the_plain_suffix_serves_a_tuple_default_and_the_graph_runs_fewer_rows(monkeypatch):
    model = _model(Pooled)
    tail = suffix_module(model, "act", ((X,), {}))
    assert tail is not None  # before: None ('dims' a placeholder crossing the cut)
    torch.testing.assert_close(tail(model.act(model.l1(X))), model(X), atol=0, rtol=0)
    rows, handle = _rows_through(model, "l1")
    try:
        got = causal_graph(model, X, ["act", "act2"], top_k=None, unit_dim=-1)
    finally:
        handle.remove()
    monkeypatch.setattr(graph_context.GraphContext, "suffix", lambda self, layer, total_rows=0: None)
    full_rows, handle = _rows_through(model, "l1")
    try:
        full = causal_graph(model, X, ["act", "act2"], top_k=None, unit_dim=-1)
    finally:
        handle.remove()
    assert sum(rows) < sum(full_rows) / 2, (sum(rows), sum(full_rows))
    assert [e[:2] for e in got.edges] == [e[:2] for e in full.edges] and len(full.edges) > 0
    assert [s["effect"] for s in got.edge_stats] == pytest.approx([s["effect"] for s in full.edge_stats], abs=1e-12)


class Concat(nn.Module):
    """``forward(x, **kw)`` reading ``kw`` in order."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.head = nn.Linear(3, 4), nn.ReLU(), nn.Linear(6, 2)

    def forward(self, x, **kw):
        return self.head(torch.cat([self.act(self.l1(x)), *kw.values()], -1))


def test_the_same_keyword_values_in_another_order_stay_refused_because_the_order_can_mean_something():
    model = _model(Concat)
    x, a, b = (torch.randn(5, k, dtype=torch.float64) for k in (3, 1, 1))
    assert not torch.allclose(model(x, a=a, b=b), model(x, b=b, a=a))  # the order is part of what forward computes
    split = fx_split(model, "act", (x,), {"a": a, "b": b})
    torch.testing.assert_close(split.recorder(*split.binding.values((x,), {"a": a, "b": b}))[0], model(x, a=a, b=b))
    with pytest.raises(SplitRefused, match="variadic"):
        split.binding.values((x,), {"b": b, "a": a})


class Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.l2, self.act2, self.head = nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2)
        self.skip = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.act2(self.l2(self.act(self.l1(x)))))


class Skipped(Chain):
    def forward(self, x):
        h = self.act(self.l1(x))
        return self.head(self.act2(self.l2(h))) + self.skip(h)


def test_a_forward_replaced_on_the_instance_is_refused_so_its_skip_path_is_measured():
    model = _model(Chain)
    model.forward = types.MethodType(Skipped.forward, model)
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert bypassed(model, "act", "act2", ((x,), {}))  # before: False, read from the class's forward
    with pytest.raises(SplitRefused, match="replaced on the instance"):
        fx_split(model, "act", (x,), {})
    assert suffix_module(model, "act") is None and suffix_module(model, "act", ((x,), {})) is None
    same = _model(Skipped)
    got, want = (causal_graph(m, x, ["act", "act2"], top_k=None, unit_dim=-1) for m in (model, same))
    assert [e[:2] for e in got.edges] == [e[:2] for e in want.edges]
    assert any(e[0].startswith("act:") and not e[1].startswith("act2") for e in want.edges)
    assert [s["effect"] for s in got.edge_stats] == pytest.approx([s["effect"] for s in want.edge_stats], abs=1e-12)


class Picked(nn.Module):
    """``forward(x, keep=(1, 0))``: a tuple default picks the output's columns."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.head = nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2)

    def forward(self, x, keep=(1, 0)):
        return self.head(self.act(self.l1(x)))[:, list(keep)]


def test_carrier_unit_effects_trace_the_call_so_a_tuple_default_takes_the_suffix():
    model = _model(Picked)
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    cf = x.clone()
    cf[:, 0] = -cf[:, 0]
    rows, handle = _rows_through(model, "l1")
    try:
        fast = carrier_unit_effects(model, x, lambda _z: cf, "act", target=0)
        fast_rows = sum(rows)
        rows.clear()
        full = carrier_unit_effects(model, x, lambda _z: cf, "act", target=0, use_suffix=False)
    finally:
        handle.remove()
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    assert fast_rows < sum(rows) / 2, (fast_rows, sum(rows))  # before: the bare trace's 'keep' crossed the cut: full passes
