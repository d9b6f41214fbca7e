"""unit_rows.moving_rows compared every sample at once: per intervention the values set and the comparison's
booleans, each N rows of the layer's output, with no chunking and no out-of-memory retry (a large probe of a wide
layer on a GPU could fail there, before any suffix pass). It now compares chunks of samples (each_chunk, sized by
rows_per_pass of the layer's rows, retried in halves on out of memory); the answer is the same (torch.equal)."""

import sys

import pytest
import torch
from torch import nn

from lightning_causal.causal import MeanOf, Patch, Scale, SetTo, Zero
from lightning_causal.causal.engine.ablation import differs
from lightning_causal.causal.engine.batching import remembered_fit
from lightning_causal.causal.engine.prefix_cache import cache_prefix
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.units import resolve_layout, unit_sums
from tests.helpers.out_of_memory import failing_above

UR = sys.modules["lightning_causal.causal.effects.unit_rows"]
N = 40


def _case():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    x = torch.randn(N, 6, generator=torch.Generator().manual_seed(1))
    with audit_mode(model):
        cache = cache_prefix(model, x, "1")
    h = cache.value
    ivs = [Zero(), SetTo(0.0, units=[2]), Scale(1.0), MeanOf(h[:5]), Patch(h.flip(0))]
    return cache, ivs, torch.tensor([0, 2, 3, 5, 7, 11, 15]), resolve_layout(h.shape)


def _whole(cache, ivs, units, layout):
    """The answer computed on every sample at once (the former code)."""
    h = cache.value
    samples = torch.arange(h.shape[0])
    first = torch.zeros_like(samples)
    moved = [unit_sums(differs(h, UR.row_values([iv], first, h, samples=samples)), layout)[:, units] > 0 for iv in ivs]
    return torch.stack(moved).transpose(1, 2).reshape(-1)


def _counting_differs(monkeypatch, fn=None):
    """The rows of every comparison moving_rows makes (through ``fn``: a fake device's limit)."""
    rows = []

    def counted(x, value):
        rows.append(x.shape[0])
        if fn is not None:
            fn(torch.arange(x.shape[0]))
        return differs(x, value)

    monkeypatch.setattr(UR, "differs", counted)
    return rows


def test_the_samples_are_compared_in_chunks_with_the_same_answer(monkeypatch):
    cache, ivs, units, layout = _case()
    expected = _whole(cache, ivs, units, layout)
    assert 0 < int(expected.sum()) < expected.numel()  # rows at the value and rows off it (Scale(1.0): none moves)
    rows = _counting_differs(monkeypatch)
    monkeypatch.setattr(UR, "rows_per_pass", lambda *_args, **_kwargs: 7, raising=False)
    got = UR.moving_rows(cache, ivs, units, layout)
    assert torch.equal(got, expected)
    assert max(rows) == 7 and sum(rows) == N * len(ivs)  # 6 chunks (7 x 5 + 5) per intervention, none of 40 rows


def test_a_chunk_that_runs_out_of_memory_runs_again_in_halves(monkeypatch):
    cache, ivs, units, layout = _case()
    expected = _whole(cache, ivs, units, layout)
    fail, calls = failing_above(5)
    rows = _counting_differs(monkeypatch, fail)
    monkeypatch.setattr(UR, "rows_per_pass", lambda *_args, **_kwargs: 16, raising=False)
    with remembered_fit(), pytest.warns(UserWarning, match="A forward pass of 16 rows ran the device out of memory"):
        got = UR.moving_rows(cache, ivs, units, layout)
    assert torch.equal(got, expected)
    assert calls[:3] == [16, 8, 4] and max(rows[3:]) <= 5  # then chunks of 4 rows


def test_the_chunks_are_the_engines_passes_of_the_layers_rows(monkeypatch):
    cache, ivs, units, layout = _case()
    asked = []

    def rows_per_pass(module, example, *args, **kwargs):
        asked.append((type(module), example[0].shape))
        return 64

    monkeypatch.setattr(UR, "rows_per_pass", rows_per_pass, raising=False)
    UR.moving_rows(cache, ivs, units, layout)
    assert asked == [(nn.Identity, cache.value.shape)]
