"""The moving-rows machinery against the plain all-rows computation, bit for bit (engine_moving).

The hidden-unit rows (``unit_rows.moving_rows`` / ``moving_units``) and the layer map's input-group rows
(``layer_trace.moving_input_rows``) leave unrun the rows that change nothing, through one set of loops
(``engine/unmoved_rows.py``: ``each_moving``, ``spread_moving``, ``map_moving``). Each is compared here with the
computation that runs every row, on linear ``[N, D]``, conv ``[N, C, H, W]`` and token-sequence ``[N, T, D]`` rows,
with some rows moving, none, and all:

- ``moving_units`` with the whole of ``h`` compared per value set at once (no chunks), in chunks of 3 samples;
- the loops with a row function evaluated on every row, the unmoved rows given their known result;
- ``unit_effects`` and ``layer_causal_map`` with the skip against every row run (the test answering ``None``), on
  models whose layers after the prefix act on each row alone and elementwise or by a per-row sum (no matrix
  product, whose CPU kernels may block a pass of another size otherwise): the results are equal bit for bit.
"""

import sys

import pytest
import torch
from torch import nn

import lightning_causal.causal.effects.unit_effects  # noqa: F401  # the module (the package exports the function)
from lightning_causal.causal import Scale, SetTo, Zero, layer_causal_map, unit_effects
from lightning_causal.causal.effects.unit_rows import moving_units, row_values
from lightning_causal.causal.engine.ablation import differs
from lightning_causal.causal.engine.units import resolve_layout, unit_sums
from lightning_causal.causal.engine.unmoved_rows import each_moving, map_moving, spread_moving
from lightning_causal.causal.structure import layer_trace

UE = sys.modules["lightning_causal.causal.effects.unit_effects"]
UR = sys.modules["lightning_causal.causal.effects.unit_rows"]
CPU = torch.device("cpu")

#: the layer outputs: linear rows, conv maps (channels on dimension 1), token sequences (features last)
SHAPES = {"linear": ((9, 7), None), "conv": ((8, 3, 4, 4), None), "tokens": ((6, 5, 4), -1)}


def _h(shape, kind):
    """ReLU-ed values, every unit of the even samples at 0 (``partial``), all at 0 (``none`` moves under ``Zero``),
    none at 0 (``all``)."""
    h = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    if kind == "partial":
        return torch.relu(h) * (torch.arange(shape[0]) % 2).view(-1, *[1] * (len(shape) - 1))
    return torch.zeros(shape) if kind == "none" else h.abs() + 0.5


def _plain_moving(h, ivs, units, layout):
    """Every sample at once, one value set after the other: ``[K, U, N]`` flattened."""
    samples = torch.arange(h.shape[0])
    first = torch.zeros_like(samples)
    moved = [unit_sums(differs(h, row_values([iv], first, h, samples=samples)), layout)[:, units] > 0 for iv in ivs]
    return torch.stack(moved).transpose(1, 2).reshape(-1)


@pytest.mark.parametrize("kind", ["partial", "none", "all"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_moving_units_is_the_plain_comparison(shape, kind, monkeypatch):
    dims, unit_dim = SHAPES[shape]
    h = _h(dims, kind)
    layout = resolve_layout(h.shape, unit_dim=unit_dim)
    units = torch.arange(layout.num_units).flip(0)[::2]  # some units, not in order
    ivs = [Zero(), SetTo(0.0), Scale(1.0)]  # Scale(1.0) moves no row; -0.0 would move under both others
    one = torch.zeros(1, dtype=torch.long)
    monkeypatch.setattr(UR, "rows_per_pass", lambda *_args, **_kwargs: 3)  # chunks of 3 samples: 3, 3, 2 / 3, 3, ...
    got = moving_units(h, lambda k, part, s: row_values([ivs[k]], one.expand(s.shape[0]), part, samples=s), len(ivs),
                       units, layout)
    expected = _plain_moving(h, ivs, units, layout)
    assert torch.equal(got, expected)
    per_value = expected.view(len(ivs), -1)
    assert not per_value[2].any()  # Scale(1.0)
    assert bool(per_value[0].all()) == (kind == "all") and bool(per_value[0].any()) == (kind != "none")


def _row_fn(idx):
    """A row's result, computed from its index alone (the same numbers in any chunk): ``[r, 2]``."""
    x = idx.double().unsqueeze(1) * torch.tensor([0.1, -0.3], dtype=torch.float64)
    return torch.sin(x) + 1.0


@pytest.mark.parametrize("moving", [
    torch.tensor([False, True, True, False, True, False, False, True, True, True, False]),  # partial
    torch.zeros(11, dtype=torch.bool),  # none
    torch.ones(11, dtype=torch.bool),  # all, as a mask
    None,  # all, every row run
])
@pytest.mark.parametrize("rows", [1, 3, 64])
def test_the_loops_are_every_row_run_with_the_unmoved_rows_known(moving, rows):
    total = 11
    every = _row_fn(torch.arange(total))
    ran = torch.ones(total, dtype=torch.bool) if moving is None else moving
    seen = []
    parts = each_moving(moving, total, rows, lambda idx: seen.append(idx) or _row_fn(idx), CPU)
    assert torch.equal(torch.cat(seen) if seen else torch.zeros(0, dtype=torch.long), ran.nonzero().flatten())
    assert max((len(i) for i in seen), default=0) <= rows
    # the unmoved rows: zeros, or a value broadcast (a row of the clean output)
    zeros = torch.where(ran.unsqueeze(1), every, torch.zeros(()).double())
    assert torch.equal(spread_moving(parts or [every[:0]], moving), zeros)
    clean = torch.tensor([[5.0, -2.0]], dtype=torch.float64)
    assert torch.equal(spread_moving(parts, moving, clean.expand(total, 2)) if moving is not None else torch.cat(parts),
                       torch.where(ran.unsqueeze(1), every, clean))
    unmoved = torch.full((total,), -1.0, dtype=torch.float64)
    got = map_moving(moving, rows, lambda idx: _row_fn(idx)[:, 0], unmoved, CPU)
    assert torch.equal(got, torch.where(ran, every[:, 0], unmoved))


class _Rowwise(nn.Module):
    """``fc`` (the prefix: any layer), ReLU (``act``, the layer intervened on), then per row only: Tanh, a weighted sum
    per class over the features (``[N, ..., F]`` -> ``[N, 3]``)."""

    def __init__(self, prefix: nn.Module, features: int):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.act = prefix, nn.ReLU()
        self.w = nn.Parameter(torch.randn(3, features))

    def forward(self, x):
        z = torch.tanh(self.act(self.fc(x))).flatten(1)
        return (z.unsqueeze(1) * self.w).sum(-1)


class _Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(9, 4)
        with torch.no_grad():  # feature 0 below 0 on every token, feature 1 on tokens 0-5: at 0 after the ReLU
            self.emb.weight[:, 0] = -self.emb.weight[:, 0].abs()
            self.emb.weight[:6, 1] = -self.emb.weight[:6, 1].abs()

    def forward(self, ids):
        return self.emb(ids)


def _models():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():  # channels at 0 everywhere on the dim samples only
        conv.weight.abs_().div_(4)
        conv.bias.copy_(-torch.linspace(0.0, 1.2, 3))
    g = torch.Generator().manual_seed(5)
    x_img = torch.randn(8, 2, 4, 4, generator=g).abs() * torch.linspace(0.0, 1.0, 8).view(-1, 1, 1, 1)
    ids = torch.randint(0, 9, (6, 5), generator=g)
    return {
        "linear": (_Rowwise(nn.Linear(6, 7), 7), torch.randn(9, 6, generator=g), {}),
        "conv": (_Rowwise(conv, 3 * 16), x_img, {}),
        "tokens": (_Rowwise(_Tokens(), 5 * 4), ids, {"unit_dim": -1}),
    }


@pytest.mark.parametrize("shape", ["linear", "conv", "tokens"])
@pytest.mark.parametrize("interventions", ["partial", "none", "all"])
def test_unit_effects_skipping_rows_equal_every_row_run(shape, interventions, monkeypatch):
    model, x, kw = _models()[shape]
    ivs = {"partial": [Zero(), SetTo(0.5)], "none": [Scale(1.0)], "all": [SetTo(0.25)]}[interventions]
    asked, real = [], UE.moving_rows
    monkeypatch.setattr(UE, "moving_rows", lambda *args: asked.append(real(*args)) or asked[-1])
    skipped = unit_effects(model.eval(), x, "act", ivs, max_batch_size=5, **kw)
    moving = asked[-1]
    assert moving is not None and bool(moving.any()) == (interventions != "none")
    assert bool(moving.all()) == (interventions == "all")
    monkeypatch.setattr(UE, "moving_rows", lambda *args: None)
    every = unit_effects(model, x, "act", ivs, max_batch_size=5, **kw)
    assert torch.equal(skipped, every)


class _Elementwise(nn.Module):
    """Every layer acts on each row alone: Tanh (``a``), a scale per feature (``b``), and a per-row weighted sum."""

    def __init__(self, features: int):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.scale, self.w = nn.Tanh(), nn.Parameter(torch.randn(features)), nn.Parameter(torch.randn(3, features))
        self.b = nn.Identity()

    def forward(self, x):
        z = self.b(self.a(x).flatten(1) * self.scale)
        return (z.unsqueeze(1) * self.w).sum(-1)


class _TokenMap(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.rest = nn.Embedding(9, 4), _Elementwise(5 * 4)

    def forward(self, ids):
        return self.rest(self.emb(ids))


@pytest.mark.filterwarnings("ignore:No input intervention moves the layers")  # "none": the map says so, both ways
@pytest.mark.parametrize("kind", ["partial", "none", "all"])
@pytest.mark.parametrize("shape", ["linear", "conv", "tokens"])
def test_the_layer_map_skipping_rows_equals_every_row_run(shape, kind, monkeypatch):
    g = torch.Generator().manual_seed(6)
    if shape == "tokens":
        model, layers = _TokenMap().eval(), ["emb", "rest.b"]
        x = torch.randint(1, 9, (6, 5), generator=g)
        x = {"partial": x.masked_fill(x > 5, 0), "none": torch.zeros_like(x), "all": x}[kind]
        kw = {"baseline": 0}
    else:
        dims = (9, 6) if shape == "linear" else (6, 2, 3, 3)
        model, layers = _Elementwise(int(torch.tensor(dims[1:]).prod())).eval(), ["a", "b"]
        x = torch.randn(*dims, generator=g)
        x = {"partial": torch.relu(x), "none": torch.zeros(dims), "all": x.abs() + 0.1}[kind]
        kw = {}
    asked, real = [], layer_trace.moving_input_rows
    monkeypatch.setattr(layer_trace, "moving_input_rows", lambda *args: asked.append(real(*args)) or asked[-1])
    skipped = layer_causal_map(model, x, layers=layers, max_batch_size=7, **kw)
    assert (asked[-1] is None) == (kind == "all")
    if kind != "all":
        assert bool(asked[-1].any()) == (kind == "partial")
    monkeypatch.setattr(layer_trace, "moving_input_rows", lambda *args: None)
    every = layer_causal_map(model, x, layers=layers, max_batch_size=7, **kw)
    for a, b in [(skipped.cka, every.cka), (skipped.response, every.response)] + [
            (skipped.group_effects[k], every.group_effects[k]) for k in every.group_effects]:
        assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())
