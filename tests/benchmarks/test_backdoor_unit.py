"""``benchmarks/backdoor_unit.py`` (a development-set study, issue 17): its method names are checked before a run, the
defence data split per class as the paper's code splits it, the bounds start at mean + 4 std, the clamp is
``min(a, max(b, 0))`` on a copy whose weights stay the fold model's, and the tightening keeps the smallest bounds within
the accuracy budget without training a weight."""

from __future__ import annotations

import re

import pytest
import torch

from benchmarks import backdoor_unit as unit
from lightning_causal.models import DigitsCNN


def test_method_names_parse_and_refuse_with_the_forms():
    assert unit.method_parts("unit") == ("unit", 1e-3)
    assert unit.method_parts("unit:init") == ("unit:init", 1e-3)
    assert unit.method_parts("unit+ft@0.01") == ("unit+ft", 0.01)
    for bad in ("unit@0", "unit@-1", "unit@x", "unit@inf", "unit:init@0.1", "unit+ft@", "unitx", "ft"):
        with pytest.raises(ValueError, match=re.escape("unit:init, unit[@<lr>] or unit+ft[@<lr>]") + ".*" + re.escape(repr(bad))):
            unit.method_parts(bad)


def test_the_split_keeps_the_first_80_percent_of_each_class_in_order():
    y = torch.tensor([0, 1, 0, 0, 1, 0, 0, 2, 1, 1, 1])  # class 0: 5 rows -> 4 + 1; class 1: 5 -> 4 + 1; class 2: 1 -> 0 + 1
    train, valid = unit.split_per_class(y)
    assert train.tolist() == [0, 1, 2, 3, 4, 5, 8, 9]
    assert valid.tolist() == [6, 7, 10]


def test_bounds_start_at_mean_plus_four_std_and_the_clamp_is_the_hand_minimum():
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(12, 1, 8, 8)
    with torch.no_grad():
        a1 = model.relu1(model.conv1(x))
    bounds = unit.start_bounds(model, x)
    assert [tuple(b.shape) for b in bounds.values()] == [(16, 8, 8), (32, 4, 4), (64,)]
    assert torch.allclose(bounds["relu1"], a1.mean(0) + 4 * a1.std(0))
    bounds = {s: b - 0.3 for s, b in bounds.items()}  # some bounds negative: the clamp reads them as 0
    net = unit.clamped(model, bounds)
    with torch.no_grad():  # the hand forward: each activation replaced by min(a, max(b, 0))
        cut = {s: b.clamp(min=0) for s, b in bounds.items()}
        h = model.pool1(torch.minimum(model.relu1(model.conv1(x)), cut["relu1"]))
        h = model.pool2(torch.minimum(model.relu2(model.conv2(h)), cut["relu2"]))
        expected = model.fc2(torch.minimum(model.relu3(model.fc1(h.flatten(1))), cut["relu3"]))
        assert torch.allclose(net(x), expected, atol=1e-6)
        assert not torch.allclose(net(x), model(x), atol=1e-3)
    assert not model.relu1._forward_hooks and all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())  # the clamp alone changes the copy
    share = unit.clipped_share(model, bounds, x)
    acts = unit.activations(model, x, unit.SITES)
    assert share == sum(int((a > cut[s]).sum()) for s, a in acts.items()) / sum(a.numel() for a in acts.values())
    assert 0 < share < 1


def test_tightening_keeps_the_smallest_bounds_within_budget_and_trains_no_weight():
    torch.manual_seed(1)
    model = DigitsCNN().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(60, 1, 8, 8), torch.randint(0, 3, (60,))
    bounds, info = unit.tighten(model, x, y, steps=30, lr=0.05)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters()) and not model.relu1._forward_hooks
    train, valid = unit.split_per_class(y)
    start = unit.bound_size(unit.start_bounds(model, x[train]))
    assert info["best_step"] >= 0 and info["valid"] >= info["valid0"] - unit.ACC_DEGRADE
    assert info["tight"] == pytest.approx(float(unit.bound_size(bounds) / start), abs=1e-4) and info["tight"] < 1
    assert info["valid"] == pytest.approx(unit.accuracy(unit.clamped(model, bounds), x[valid], y[valid]), abs=1e-4)
    again, _ = unit.tighten(model, x, y, steps=30, lr=0.05)  # deterministic: the same bounds
    assert all(torch.equal(bounds[s], again[s]) for s in bounds)
    # a budget nothing meets (the clamped model would have to beat the unclamped one by 2): the last bounds, step -1
    _, none = unit.tighten(model, x, y, steps=3, lr=0.05, acc_degrade=-2.0)
    assert none["best_step"] == -1
