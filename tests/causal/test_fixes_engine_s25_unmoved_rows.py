"""The hidden-unit row engines besides ``unit_effects``' exact rows leave unrun the rows that run the clean sample, by
one test (``unit_rows.moving_units``): ``causal_graph``'s sweeps (``path_effects_from``: a source unit already at the
baseline), ``carrier_unit_effects`` (a unit whose counterfactual activation is its factual one) and the per-row
frontier runs of ``method="attribution"`` (``moving_rows``). They ran every row before (fixes_engine_s25). Each test
counts the rows that ran, and compares the results with every row run (the test answering ``None``): the rows left
unrun exactly 0, the others within :data:`ATOL` (passes of other sizes may round otherwise). The layer map's passes
of moving rows keep to ``max_batch_size`` (a guard: they did before too)."""

import sys
import warnings

import pytest
import torch
from torch import nn

import lightning_causal.causal.effects.unit_attribution  # noqa: F401  # the modules (the package exports functions)
import lightning_causal.causal.scm.fairness  # noqa: F401
import lightning_causal.causal.structure.path_effects  # noqa: F401
from lightning_causal.causal import (
    SetTo,
    Zero,
    carrier_unit_effects,
    causal_graph,
    layer_causal_map,
    unit_effects,
)
from lightning_causal.causal.effects.unit_rows import moving_units
from lightning_causal.causal.engine.batching import rows_alone
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.units import resolve_layout
from lightning_causal.causal.engine.unmoved_rows import each_moving, map_moving
from lightning_causal.causal.structure.graph_context import GraphContext
from lightning_causal.causal.structure.path_effects import path_effects_from

UA = sys.modules["lightning_causal.causal.effects.unit_attribution"]
FAIR = sys.modules["lightning_causal.causal.scm.fairness"]
PATHS = sys.modules["lightning_causal.causal.structure.path_effects"]

#: float32 outputs below 1 here: 1e-6 is some 10-30 ulps, the rounding of passes of other sizes; a row left unrun by
#: mistake moves a result by far more (each test also counts the rows that ran)
ATOL = 1e-6


def _relu_mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def _x(n=12, seed=1):
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))


class _Noisy(nn.Module):
    """The ReLU MLP with noise drawn from the global RNG in eval mode too (its passes draw separately)."""

    def __init__(self):
        super().__init__()
        self.net = _relu_mlp()

    def forward(self, x):
        return self.net(x) + 1e-3 * torch.randn(x.shape[0], 3)


def _at_zero(h):
    """(unit, sample) pairs at +0.0 (the value Zero() and the baseline 'zero' set), ``[U, N]``."""
    return ((h == 0) & ~torch.signbit(h)).T


def _rows(module):
    """A hook counting the rows ``module`` returns, but for the stacked-rows check's rows run alone besides their chunk
    (``rows_alone``); ``(seen, handle)``."""
    seen = []
    return seen, module.register_forward_hook(lambda _m, _i, out: None if rows_alone() else seen.append(out.shape[0]))


def test_moving_units_and_the_loops_over_them():
    h = torch.tensor([[0.0, 2.0, -0.0], [1.0, 0.0, 0.0]])
    moving = moving_units(h, lambda _k, _part, _s: torch.zeros(()), 1, torch.arange(3), resolve_layout(h.shape))
    assert moving.tolist() == [False, True, True, False, True, False]  # -0.0 set to 0.0 moves its sign bit
    ran = []
    out = map_moving(moving, 2, lambda idx: ran.append(idx.tolist()) or idx.float(), torch.full((6,), -1.0), h.device)
    assert out.tolist() == [-1.0, 1.0, 2.0, -1.0, 4.0, -1.0] and ran == [[1, 2], [4]]
    chunks = []
    each_moving(moving, 6, 2, lambda idx: chunks.append(idx.tolist()), h.device)
    assert chunks == [[1, 2], [4]]
    chunks.clear()
    each_moving(None, 3, 2, lambda idx: chunks.append(idx.tolist()), h.device)
    assert chunks == [[0, 1], [2]]


# ----------------------------------------------------------------------------- causal_graph's sweeps (path effects)


def _context(model, x, layers):
    forward = Forward(model, num_samples=x.shape[0], as_matrix=True)
    return GraphContext.build(forward, (x,), layers, None)


@pytest.mark.parametrize("clamp", [False, True])
def test_a_sweep_leaves_out_the_source_units_at_the_baseline(clamp, monkeypatch):
    model, x = _relu_mlp(), _x()
    layers = ["1", "3"]
    with audit_mode(model):
        ctx = _context(model, x, layers)
        base = ctx.values("1", "zero")
        targets = {"3": [0, 2, 5]}
        path_effects_from(ctx, "1", list(range(10)), targets, base=base, clamp=clamp)  # the context's trial passes
        seen, handle = _rows(model[4])
        try:
            skipped = path_effects_from(ctx, "1", list(range(10)), targets, base=base, clamp=clamp)
            ran_skipped = sum(seen)
            seen.clear()
            monkeypatch.setattr(PATHS, "moving_units", lambda *args: None)
            every = path_effects_from(ctx, "1", list(range(10)), targets, base=base, clamp=clamp)
            ran_every = sum(seen)
        finally:
            handle.remove()
    at_zero = _at_zero(ctx.acts["1"])  # [U, N]
    assert 0 < int(at_zero.sum()) < at_zero.numel()
    # the sweep's rows of the units at 0 did not run (no patching rows come of them either way: nothing reached a target)
    assert ran_every - ran_skipped == int(at_zero.sum())
    assert torch.equal(skipped.output[at_zero], torch.zeros(int(at_zero.sum())))
    torch.testing.assert_close(skipped.output, every.output, rtol=0, atol=ATOL)
    assert torch.equal(skipped.exists["3"], every.exists["3"])
    torch.testing.assert_close(skipped.hidden["3"], every.hidden["3"], rtol=0, atol=ATOL)


def test_the_graph_is_that_of_every_row_run(monkeypatch):
    model, x = _relu_mlp(), _x(24)
    skipped = causal_graph(model, x, ["1", "3"], top_k=4)
    monkeypatch.setattr(PATHS, "moving_units", lambda *args: None)
    every = causal_graph(model, x, ["1", "3"], top_k=4)
    assert skipped.nodes == every.nodes and skipped.edges == every.edges
    for a, b in zip(skipped.edge_stats, every.edge_stats):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], abs=1e-5), key
            else:
                assert a[key] == b[key], key


def test_a_sweep_of_a_model_that_draws_noise_runs_every_row():
    model, x = _Noisy().eval(), _x()
    with audit_mode(model):
        ctx = _context(model, x, ["net.1", "net.3"])
        ctx.noisy = True  # as causal_graph sets it from warn_separate_noise
        ctx.rows("net.1", 10 * 12)  # the context's trial passes
        seen, handle = _rows(model.net[4])
        try:  # no target: no patching rows
            path_effects_from(ctx, "net.1", list(range(10)), {}, base=ctx.values("net.1", "zero"), clamp=False)
        finally:
            handle.remove()
    assert sum(seen) == 10 * 12


# ------------------------------------------------------------------------------------------ carrier_unit_effects


def _flip(x):
    return torch.cat([-x[:, :1], x[:, 1:]], 1)


@pytest.mark.parametrize("forward_args", [False, True])
def test_carrier_rows_of_units_the_counterfactual_leaves_as_they_are_do_not_run(forward_args, monkeypatch):
    """A ReLU unit at 0 on the factual and the counterfactual sample patches nothing; its c_u is 0. Through the fx
    suffix and (a forward argument) through full passes with the patch hooked in."""

    class WithArg(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _relu_mlp()

        def forward(self, x, scale):
            return self.net(x) * scale.view(-1, 1)

    x = _x(16)
    if forward_args:
        model, layer, head = WithArg().eval(), "net.1", None
        kw = {"additional_forward_args": (torch.linspace(0.5, 1.5, 16),)}
        head = model.net[4]
    else:
        model, layer, kw = _relu_mlp(), "1", {}
        head = model[4]
    h = model.net[1] if forward_args else model[1]
    acts = {}
    grab = h.register_forward_hook(lambda _m, _i, out: acts.setdefault(len(acts), out.detach().clone()))
    with torch.no_grad():
        model(x, *kw.get("additional_forward_args", ())) if forward_args else model(x)
        model(_flip(x), *kw.get("additional_forward_args", ())) if forward_args else model(_flip(x))
    grab.remove()
    same = ((acts[0] == acts[1]) & (torch.signbit(acts[0]) == torch.signbit(acts[1]))).T  # [U, N]
    assert 0 < int(same.sum()) < same.numel()
    seen, handle = _rows(head)
    try:
        skipped = carrier_unit_effects(model, x, _flip, layer, target=1, max_batch_size=16, **kw)
        ran_skipped = sum(seen)
        seen.clear()
        monkeypatch.setattr(FAIR, "moving_units", lambda *args: None)
        every = carrier_unit_effects(model, x, _flip, layer, target=1, max_batch_size=16, **kw)
        ran_every = sum(seen)
    finally:
        handle.remove()
    assert ran_every - ran_skipped == int(same.sum())
    assert torch.equal(skipped.T[same], torch.zeros(int(same.sum())))
    torch.testing.assert_close(skipped, every, rtol=0, atol=ATOL)


def test_carrier_rows_of_a_model_that_draws_noise_all_run():
    model, x = _Noisy().eval(), _x(16)
    seen, handle = _rows(model.net[4])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its noise warning
            carrier_unit_effects(model, x, _flip, "net.1", target=1, max_batch_size=16)
    finally:
        handle.remove()
    assert sum(seen[-10:]) == 10 * 16  # the last passes: the 10 units x 16 patched rows, every one


# ------------------------------------------------------------------------ method="attribution"'s per-row frontier runs


class _Centred(nn.Module):
    """A centring (it mixes the units) and a Tanh between the ReLU and the head, the frontier: no unit-local way, one
    partial run per (intervention, unit, sample) row."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.act, self.head = nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3)

    def forward(self, x):
        h = self.act(self.fc(x))
        return self.head(torch.tanh(h - h.mean(-1, keepdim=True)))


@pytest.mark.parametrize("ivs", [Zero(), [Zero(), SetTo(0.5)]], ids=["zero", "grid"])
def test_the_frontier_rows_of_units_at_the_value_do_not_run(ivs, monkeypatch):
    model, x = _Centred().eval(), _x(12)
    with torch.no_grad():
        h = model.act(model.fc(x))
    at_zero = _at_zero(h)
    assert 0 < int(at_zero.sum()) < at_zero.numel()
    rows, real = [], UA.unit_rows

    def counted(ivs, units, layout, n, *, idx, fold=1):
        if not rows_alone():  # the stacked-rows check's rows run alone besides their chunk: not the estimator's rows
            rows.append(idx.numel())
        return real(ivs, units, layout, n, idx=idx, fold=fold)

    monkeypatch.setattr(UA, "unit_rows", counted)
    skipped = unit_effects(model, x, "act", ivs, method="attribution", target=0)
    ran_skipped = sum(rows)
    rows.clear()
    monkeypatch.setattr(UA, "moving_rows", lambda *args: None)
    every = unit_effects(model, x, "act", ivs, method="attribution", target=0)
    k = 1 if isinstance(ivs, Zero) else 2
    assert sum(rows) == k * 10 * 12 and ran_skipped == sum(rows) - int(at_zero.sum())  # Zero()'s rows at 0; SetTo's all run
    torch.testing.assert_close(skipped, every, rtol=0, atol=ATOL)
    if k == 1:
        assert torch.equal(skipped.T[at_zero], torch.zeros(int(at_zero.sum())))


# ------------------------------------------------------------------------------- the layer map's passes (a guard)


def test_the_layer_maps_passes_of_moving_rows_keep_to_max_batch_size():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    x = torch.randn(20, 8, generator=torch.Generator().manual_seed(1))
    x[:, :3] = 0.0  # three features at the baseline: their 60 rows do not run
    seen, handle = _rows(model[0])
    try:
        lm = layer_causal_map(model, x, max_batch_size=7)
    finally:
        handle.remove()
    trace = seen[-(((8 - 3) * 20 + 6) // 7):]  # the trace's passes: 100 moving rows in passes of 7
    assert sum(trace) == 100 and max(trace) <= 7
    seen.clear()
    with torch.no_grad():
        whole = layer_causal_map(model, x, max_batch_size=1000)
    torch.testing.assert_close(lm.cka, whole.cka, rtol=0, atol=1e-6)


def test_carrier_rows_of_a_layer_run_twice_a_pass_are_refused():
    """The patch would go in at both calls with the last call's counterfactual value, which the first call's unit
    never had: refused (newuser108, ``repeated_carrier_error``), before any patched row runs."""

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc, self.act, self.head = nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)

        def forward(self, x):
            return self.head(self.act(self.fc(self.act(self.fc(x)))))

    model, x = Twice().eval(), _x(16)
    seen, handle = _rows(model.head)
    try:
        with pytest.raises(ValueError, match="'act' to run once per forward pass for its carrier units, but it runs 2 times"):
            carrier_unit_effects(model, x, _flip, "act", target=1, max_batch_size=16)
    finally:
        handle.remove()
    assert len(seen) <= 2  # the factual pass (and the site's one-sample check) only
