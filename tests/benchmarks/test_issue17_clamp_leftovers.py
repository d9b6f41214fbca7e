"""``benchmarks/backdoor_unit_leftovers.py`` (a development-set study, issue 17): UNIT's bounds per channel (over every
position of a convolution's channel) start at the pooled mean + 4 std and clamp as the hand minimum; the tightening at
one site and with a larger validation split; the method names; the merge of the cached records only on the same fold
models; and the summary without the unused "units pruned" column where nothing was pruned."""

from __future__ import annotations

import json
import re

import pytest
import torch

from benchmarks import backdoor_protocol as bp
from benchmarks import backdoor_unit as unit
from benchmarks import backdoor_unit_leftovers as left
from benchmarks.backdoor_rnp import summary
from lightning_causal.models import DigitsCNN


def test_channel_bounds_pool_rows_and_positions_and_clamp_as_the_hand_minimum():
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    x = torch.rand(12, 1, 8, 8)
    with torch.no_grad():
        a1 = model.relu1(model.conv1(x))
        a3 = model.relu3(model.fc1(model.pool2(model.relu2(model.conv2(model.pool1(a1)))).flatten(1)))
    bounds = unit.start_bounds(model, x, per="channel")
    assert [tuple(b.shape) for b in bounds.values()] == [(16, 1, 1), (32, 1, 1), (64,)]
    by_hand = torch.stack([a1[:, c].mean() + 4 * a1[:, c].std() for c in range(16)])  # rows x 64 positions, unbiased
    assert torch.allclose(bounds["relu1"].flatten(), by_hand, atol=1e-6)
    assert torch.allclose(bounds["relu3"], a3.mean(0) + 4 * a3.std(0), atol=1e-6)  # a linear layer: per neuron
    bounds = {s: b * 0.5 for s, b in bounds.items()}
    net = unit.clamped(model, bounds)
    with torch.no_grad():  # the hand forward: every position of channel c cut at the channel's one bound
        h = model.pool1(torch.minimum(a1, bounds["relu1"].view(1, 16, 1, 1)))
        h = model.pool2(torch.minimum(model.relu2(model.conv2(h)), bounds["relu2"].view(1, 32, 1, 1)))
        expected = model.fc2(torch.minimum(model.relu3(model.fc1(h.flatten(1))), bounds["relu3"]))
        assert torch.allclose(net(x), expected, atol=1e-6) and not torch.allclose(net(x), model(x), atol=1e-3)
    with pytest.raises(ValueError, match=re.escape("'neuron' or 'channel' but got 'position'")):
        unit.start_bounds(model, x, per="position")


def test_tightening_at_one_site_per_channel_and_with_half_held_to_check():
    torch.manual_seed(1)
    model = DigitsCNN().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(60, 1, 8, 8), torch.randint(0, 3, (60,))
    bounds, info = unit.tighten(model, x, y, steps=20, lr=0.05, sites=("relu3",))
    assert list(bounds) == ["relu3"] and bounds["relu3"].shape == (64,) and not model.relu3._forward_hooks
    _, valid = unit.split_per_class(y, 0.5)
    assert len(valid) in (29, 30, 31)  # half of each class
    chan, info = unit.tighten(model, x, y, steps=20, lr=0.05, per="channel", valid_share=0.5)
    assert [tuple(b.shape) for b in chan.values()] == [(16, 1, 1), (32, 1, 1), (64,)]
    assert info["valid0"] == pytest.approx(unit.accuracy(model, x[valid], y[valid]), abs=1e-4)
    assert info["valid"] == pytest.approx(unit.accuracy(unit.clamped(model, chan), x[valid], y[valid]), abs=1e-4)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_method_names_and_the_settings_fixed_before_the_runs():
    assert left.method_parts("ch") == (False, left.Variant(per="channel"))
    assert left.method_parts("ch@0.01")[1].lr == 0.01 and left.method_parts("relu3")[1].sites == ("relu3",)
    assert left.method_parts("v50")[1].valid_share == 0.5
    assert left.method_parts("reversed") == (True, None)
    assert left.method_parts("reversed+unit") == (True, left.Variant(unit.SITES, "neuron", unit.LR, unit.VALID_SHARE))
    assert left.method_parts("reversed+ch") == (True, left.VARIANTS["ch"])
    for bad in ("unit", "ch@0.1", "reversed+relu3", ""):
        with pytest.raises(ValueError, match="one of ch, ch@0.01, relu3, v50, reversed, reversed\\+unit, reversed\\+ch but got " + re.escape(repr(bad))):
            left.method_parts(bad)


def _rec(seed, fold, method, correct, asr_hits=5, **extra):
    return {"seed": seed, "fold": fold, "method": method, "n": 100, "correct": correct, "lost": 0, "gained": 0,
            "asr_hits": asr_hits, "asr_n": 90, "seconds": 1.0, **extra}


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_cached_records_merge_only_on_the_same_fold_models_and_never_over_this_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(left, "CACHE", tmp_path)
    out = tmp_path / "unitleft-dev-x.jsonl"
    _write(out, [_rec(1, 0, "none", 90), _rec(1, 1, "none", 91), _rec(1, 0, "ch", 89), _rec(1, 0, "reversed", 80)])
    _write(tmp_path / "unit-dev-full.jsonl", [_rec(1, 0, "none", 90), _rec(1, 0, "ft", 88), _rec(1, 0, "unit", 87),
                                              _rec(1, 0, "unit:init", 86),  # not a merged method
                                              _rec(1, 1, "none", 92), _rec(1, 1, "ft", 70)])  # another fold model
    _write(tmp_path / "dev-np_default.jsonl", [_rec(1, 0, "none", 90), _rec(1, 0, "reversed", 60),  # this run has it
                                               _rec(1, 1, "none", 91), _rec(1, 1, "reversed", 85)])
    rows = [json.loads(line) for line in left.merged(out, "dev", tmp_path / "m.jsonl").read_text().splitlines()]
    got = sorted((r["fold"], r["method"], r["correct"]) for r in rows if r["method"] != "none")
    assert got == [(0, "ch", 89), (0, "ft", 88), (0, "reversed", 80), (0, "unit", 87), (1, "reversed", 85)]
    clean = {k: v for k, v in _rec(2, 0, "none", 90).items() if not k.startswith("asr")}  # a clean model: no ASR fields
    _write(out, [clean, {**clean, "method": "ch"}])
    _write(tmp_path / "unit-dev-full.jsonl", [clean, {**clean, "method": "ft", "correct": 91}])
    rows = [json.loads(line) for line in left.merged(out, "dev", tmp_path / "m.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["correct"]) for r in rows) == [("ch", 90), ("ft", 91), ("none", 90)]


def test_the_summary_shows_units_pruned_only_where_something_was_pruned(tmp_path):
    case = bp.DEV_CASES[0]
    path = tmp_path / "r.jsonl"
    _write(path, [_rec(case.seed, 0, "none", 90), _rec(case.seed, 0, "unit", 89)])
    head = summary([case], path, []).splitlines()
    assert "units pruned" not in head[0] and head[0].count("|") == head[1].count("|") == head[2].count("|") == 9
    assert head[2] == "| unit | 0/1 | 1/1 | -1.00 | 5.6 | – | – | 1.0 |"
    _write(path, [_rec(case.seed, 0, "none", 90), _rec(case.seed, 0, "rnp:x@k4", 89, pruned=4)])
    head = summary([case], path, []).splitlines()
    assert "units pruned (mean)" in head[0] and head[0].count("|") == head[1].count("|") == head[2].count("|") == 10
    assert head[2] == "| rnp:x@k4 | 0/1 | 1/1 | -1.00 | 5.6 | – | – | 4.0 | 1.0 |"
