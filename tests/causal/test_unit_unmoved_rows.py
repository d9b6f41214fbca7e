"""`unit_effects` leaves unrun the rows whose intervention leaves the layer's output as it is (unitrows helper):
``Zero()`` on a ReLU neuron at 0 on a sample, or on a conv channel at 0 at every position, runs the clean sample, so
its effect is exactly 0 (its curve value the clean output in a do-grid). The rows left unrun are exactly the (unit,
sample) pairs at the value (what ``moving_rows`` answers, and the rows the suffix saw), their effects exactly 0, and the
others' effects those of running every row, up to the rounding of passes of other sizes (:data:`ATOL`).
Where equality is not exact by construction (Resample's draws, a model that draws noise, folded rows, a layer called
twice, full passes, -0.0 against 0.0) every row still runs."""

import sys

import pytest
import torch
from torch import nn

import lightning_causal.causal.effects.unit_effects  # noqa: F401  # the module (the package exports the function)
from lightning_causal.causal import MeanOf, Patch, Resample, Scale, SetTo, Zero, unit_effects
from lightning_causal.causal.effects.unit_rows import moving_rows
from lightning_causal.causal.engine.batching import rows_alone
from lightning_causal.causal.engine.prefix_cache import cache_prefix
from lightning_causal.causal.engine.units import resolve_layout

UE = sys.modules["lightning_causal.causal.effects.unit_effects"]


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def _cnn():
    """Conv channels whose bias falls from 0 to -1.4: each channel is 0 at every position on some samples only."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(6 * 6 * 6, 4)).eval()
    with torch.no_grad():
        model[0].weight.abs_().div_(4)
        model[0].bias.copy_(-torch.linspace(0.0, 1.4, 8))
    return model


def _inputs(*shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    if len(shape) == 4:  # images: a brightness per sample, so that dim samples leave channels at 0 everywhere
        x = x.abs() * torch.linspace(0.0, 1.0, shape[0]).view(-1, 1, 1, 1)
    return x


CASES = {"mlp": (_mlp, (12, 20), "1", (slice(None),)), "cnn": (_cnn, (10, 3, 6, 6), "1", (slice(None),))}


#: Leaving rows unrun changes which rows share a suffix pass, and a CPU kernel may block a pass of another size
#: otherwise, reassociating its sums: the effects (float32 differences of outputs below 0.4 here, an ulp 3e-8) then
#: differ by a few ulps (2, 6e-8, seen for the MLP in passes of 7 rows on two threads), so the rows that run are
#: compared within 1e-6 (30 such ulps). What is exact by construction stays exact: which rows are left unrun
#: (:func:`_assert_leaves_out`), their effects of 0, the rows counted. A moving row of these models left unrun by
#: mistake moves the effects by 1.5e-3 (the first moving row of the MLP and the CNN) but, for one (unit, sample) pair
#: of the MLP, by 2.4e-7 only: below ATOL, so every test that leaves rows unrun also counts the rows run.
ATOL = 1e-6


def _every_row(monkeypatch):
    monkeypatch.setattr(UE, "moving_rows", lambda *args: None)


def _assert_close_to_every_row(skipped, every):
    torch.testing.assert_close(skipped, every, rtol=0, atol=ATOL)


def _recorded_moves(monkeypatch):
    """``moving_rows``' answers while the skipping run goes (with the units they were asked about)."""
    seen, real = [], UE.moving_rows

    def record(cache, ivs, units, layout):
        seen.append((units, real(cache, ivs, units, layout)))
        return seen[-1][1]

    monkeypatch.setattr(UE, "moving_rows", record)
    return seen


def _assert_leaves_out(seen, at_value, moves_all=()):
    """Every answer runs exactly the rows off the value: flat (intervention, unit, sample), ``at_value`` ``[N, U]``
    for each intervention but those of ``moves_all`` (positions of interventions that move every unit)."""
    assert seen
    for units, moving in seen:
        off = (~at_value[:, units]).T.reshape(-1)
        k = moving.numel() // off.numel()
        expected = torch.cat([torch.ones_like(off) if i in moves_all else off for i in range(k)])
        assert torch.equal(moving, expected)


def _counted(model, module, fn):
    """``fn()`` and the rows that went through ``module`` (a module after the layer) while it ran."""
    seen = []
    # the stacked-rows check's rows run alone besides their chunk are not the estimator's rows
    handle = module.register_forward_hook(lambda _m, inp, _o: None if rows_alone() else seen.append(inp[0].shape[0]))
    try:
        out = fn()
    finally:
        handle.remove()
    return out, sum(seen)


def _at_zero(model, x, layer):
    """The (unit, sample) pairs whose unit is 0.0 (not -0.0) at every position on that sample."""
    h = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: h.setdefault("h", out.detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    zero = (h["h"] == 0) & ~torch.signbit(h["h"])
    return zero.flatten(2).all(2) if zero.dim() > 2 else zero


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("max_batch_size", [None, 7])
def test_effects_are_those_of_every_row_and_the_rows_at_the_value_are_not_run(case, max_batch_size, monkeypatch):
    make, shape, layer, _ = CASES[case]
    model, x = make(), _inputs(*shape)
    at_zero = _at_zero(model, x, layer)
    assert 0.2 < float(at_zero.float().mean()) < 0.8  # many, not all, pairs at the value
    after = model[-1]
    seen = _recorded_moves(monkeypatch)
    skipped, rows_skipped = _counted(model, after, lambda: unit_effects(model, x, layer, max_batch_size=max_batch_size))
    _assert_leaves_out(seen, at_zero)
    _every_row(monkeypatch)
    every, rows_every = _counted(model, after, lambda: unit_effects(model, x, layer, max_batch_size=max_batch_size))
    _assert_close_to_every_row(skipped, every)
    assert torch.equal(skipped[at_zero], torch.zeros(int(at_zero.sum())))
    assert rows_every - rows_skipped == int(at_zero.sum())  # fails before: every row ran
    assert bool((skipped[~at_zero] != 0).any())  # rows that moved: not effects of zeros


def test_a_do_grid_is_the_same_and_skips_each_interventions_own_pairs(monkeypatch):
    model, x = _mlp(), _inputs(12, 20)
    at_zero = _at_zero(model, x, "1")
    grid = [SetTo(0.0), SetTo(0.5), Zero()]  # SetTo(0.5) moves every unit; the other two skip the pairs at 0
    seen = _recorded_moves(monkeypatch)
    skipped, rows_skipped = _counted(model, model[-1], lambda: unit_effects(model, x, "1", grid))
    _assert_leaves_out(seen, at_zero, moves_all=(1,))
    _every_row(monkeypatch)
    every, rows_every = _counted(model, model[-1], lambda: unit_effects(model, x, "1", grid))
    _assert_close_to_every_row(skipped, every)
    assert rows_every - rows_skipped == 2 * int(at_zero.sum())


def test_the_screens_exact_columns_skip_too(monkeypatch):
    model, x = _mlp(), _inputs(12, 20)
    at_zero = _at_zero(model, x, "1")
    seen = _recorded_moves(monkeypatch)
    (skipped, info), rows_skipped = _counted(model, model[-1], lambda: unit_effects(model, x, "1", screen=5, return_info=True))
    _assert_leaves_out(seen, at_zero)
    _every_row(monkeypatch)
    every, rows_every = _counted(model, model[-1], lambda: unit_effects(model, x, "1", screen=5))
    _assert_close_to_every_row(skipped, every)
    exact_at_zero = at_zero[:, info.exact]
    assert torch.equal(skipped[:, info.exact][exact_at_zero], torch.zeros(int(exact_at_zero.sum())))
    assert rows_every - rows_skipped == int(exact_at_zero.sum())  # a moving row of effect 2.4e-7 (below ATOL) counts too


def test_mean_scale_and_patch_compare_their_own_values():
    """MeanOf of a reference whose mean is 0 on some units, Scale (0 · 2 = 0), and Patch whose source equals the
    clean activations on the samples it copies: the rows skipped are exactly the pairs already at the value."""
    model, x = _mlp(), _inputs(12, 20)
    with torch.no_grad():
        h = torch.relu(model[0](x))
        cache = cache_prefix(model, x, "1")
    layout = resolve_layout(h.shape)
    units = torch.arange(32)
    ref = torch.relu(model[0](_inputs(40, 20, seed=5))).detach()
    ref[:, ::3] = 0.0  # neurons dead on the reference: mean 0
    mean = ref.mean(0)
    assert bool((mean == 0).any())
    source = torch.where(torch.arange(12).view(-1, 1) % 2 == 0, h, h + 1.0)  # even samples: the clean values
    expected = {
        "mean": (MeanOf(ref), h != mean),
        "scale": (Scale(2.0), h != 0),
        "patch": (Patch(source), (torch.arange(12) % 2 == 1).view(-1, 1).expand(12, 32)),
    }
    for name, (iv, moves) in expected.items():
        got = moving_rows(cache, [iv], units, layout)
        assert torch.equal(got, moves.T.reshape(-1)), name


@pytest.mark.parametrize("make_iv", [lambda ref: Resample(ref), lambda ref: type("MyZero", (Zero,), {})()])
def test_resample_and_interventions_of_ones_own_run_every_row(make_iv):
    model, x = _mlp(), _inputs(12, 20)
    ref = torch.zeros(4, 32)  # every donor at 0: equal on the pairs at 0, but a draw per row
    _, rows = _counted(model, model[-1], lambda: unit_effects(model, x, "1", make_iv(ref)))
    _, rows_other = _counted(model, model[-1], lambda: unit_effects(model, x, "1", SetTo(0.5)))
    assert rows == rows_other  # SetTo(0.5) moves every unit: every row runs


def test_minus_zero_is_not_zero():
    """A layer at -0.0 (a negated ReLU) moves under Zero(): the sign reaches the model's atan2."""

    class Neg(nn.Module):
        def forward(self, x):
            return -x

    class Atan(nn.Module):
        def forward(self, h):
            return torch.atan2(h, torch.full_like(h, -1.0))

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), Neg(), Atan(), nn.Linear(8, 2)).eval()
    x = _inputs(5, 6)
    assert bool(torch.signbit(model[:3](x)).all())
    effects, rows = _counted(model, model[-1], lambda: unit_effects(model, x, "2"))
    _, rows_other = _counted(model, model[-1], lambda: unit_effects(model, x, "2", SetTo(0.5)))
    assert rows == rows_other
    assert bool((effects[model[:2](x) == 0] != 0).all())  # atan2(-0, -1) = -pi, atan2(0, -1) = pi


class _Draws(nn.Module):
    """MC dropout kept on in eval mode: draws noise at every pass."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(20, 32), nn.ReLU())
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(nn.functional.dropout(self.body(x), 0.1, training=True))


class _Twice(nn.Module):
    """The ReLU called twice: a unit at 0 in the first call is edited in the second call's output too."""

    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2, self.head = nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.act(self.fc2(self.act(self.fc1(x)))))


RUN_EVERY_ROW = {"noise": (_Draws, "body.1", {}), "called twice": (_Twice, "act", {}),
                 "full passes": (_mlp, "1", {"use_suffix": False})}


@pytest.mark.parametrize("case", list(RUN_EVERY_ROW))
def test_noise_a_layer_called_twice_and_full_passes_run_every_row(case, recwarn):
    make, layer, kwargs = RUN_EVERY_ROW[case]
    torch.manual_seed(0)
    model, x = make().eval(), _inputs(12, 20)
    after = model.head if hasattr(model, "head") else model[-1]
    _, rows = _counted(model, after, lambda: unit_effects(model, x, layer, **kwargs))
    _, rows_other = _counted(model, after, lambda: unit_effects(model, x, layer, SetTo(0.5), **kwargs))
    assert rows == rows_other
    if case == "noise":
        assert any("random" in str(w.message) for w in recwarn)


def test_a_folded_layer_runs_every_row():
    class Folded(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act, self.head = nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3)

        def forward(self, h):
            n, t, d = h.shape
            return self.head(self.act(self.fc1(h.reshape(n * t, d))).view(n, t, -1).mean(1))

    torch.manual_seed(0)
    model, x = Folded().eval(), _inputs(5, 4, 6)
    _, rows = _counted(model, model.head, lambda: unit_effects(model, x, "act", unit_dim=-1))
    _, rows_other = _counted(model, model.head, lambda: unit_effects(model, x, "act", SetTo(0.5), unit_dim=-1))
    assert rows == rows_other


def test_heads_skip_where_every_element_of_the_head_is_at_the_value(monkeypatch):
    """Units of several positions (heads of ``[N, T, H * d]``): a row is left unrun only where all of its head's
    elements, at every position, hold the value."""

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj, self.act, self.head = nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)

        def forward(self, x):  # [N, T, 5] -> [N, T, 8]: 4 heads of 2
            return self.head(self.act(self.proj(x)).mean(1))

    torch.manual_seed(0)
    model = Heads().eval()
    with torch.no_grad():
        model.proj.bias.copy_(torch.tensor([-3.0, -3.0, 0.0, 0.0, -3.0, 0.0, 0.5, 0.5]))
    x = _inputs(6, 3, 5) * torch.linspace(0.2, 2.0, 6).view(-1, 1, 1)
    with torch.no_grad():
        h = model.act(model.proj(x)).view(6, 3, 4, 2)
    whole = (h == 0).all(3).all(1)  # [N, H]: the head at 0 everywhere
    assert 0 < int(whole.sum()) < whole.numel() and bool(((h == 0).any(3).any(1) & ~whole).any())  # partly 0: runs
    seen = _recorded_moves(monkeypatch)
    skipped, rows_skipped = _counted(model, model.head, lambda: unit_effects(model, x, "act", num_heads=4))
    _assert_leaves_out(seen, whole)
    _every_row(monkeypatch)
    every, rows_every = _counted(model, model.head, lambda: unit_effects(model, x, "act", num_heads=4))
    _assert_close_to_every_row(skipped, every)
    assert torch.equal(skipped[whole], torch.zeros(int(whole.sum())))
    assert rows_every - rows_skipped == int(whole.sum())
