"""``benchmarks/backdoor_mcr.py`` (a development-set study, issue 17): its method names are checked before a run, the
curve is the quadratic Bezier curve its docstring states (its ends the two models), and training the control point
makes the curve's middle fit the clean set while both models are left untouched."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import backdoor_mcr as mcr
from benchmarks import backdoor_peers as peers


def test_method_names_parse_and_refuse_with_the_form():
    assert mcr.method_parts("mcr:100:0.01:0.3") == (100, 0.01, 0.3)
    assert mcr.method_parts("mcr:5:1e-3:1") == (5, 0.001, 1.0)
    for bad in ("mcr:100:0.01", "mcr:0:0.01:0.3", "mcr:100:0:0.3", "mcr:100:0.01:1.5", "mcr:100:0.01:-0.1",
                "mc:100:0.01:0.3", "mcr:x:0.01:0.3", "mcr:100:nan:0.3", "mcr:100:0.01:0.3:1"):
        with pytest.raises(ValueError, match=rf"mcr:<epochs>:<lr>:<t>.*{bad!r}"):
            mcr.method_parts(bad)


def test_the_bezier_point_is_the_quadratic_curve_through_its_ends():
    w0, theta, w1 = {"a": torch.tensor([1.0, -2.0])}, {"a": torch.tensor([5.0, 0.0])}, {"a": torch.tensor([3.0, 4.0])}
    assert torch.equal(mcr.bezier(w0, theta, w1, 0.0)["a"], w0["a"])
    assert torch.equal(mcr.bezier(w0, theta, w1, 1.0)["a"], w1["a"])
    # t = 0.5: w0 / 4 + theta / 2 + w1 / 4
    assert torch.allclose(mcr.bezier(w0, theta, w1, 0.5)["a"], torch.tensor([3.5, 0.5]))
    # t = 0.3 by the formula, not a straight line (theta off the segment)
    assert torch.allclose(mcr.bezier(w0, theta, w1, 0.3)["a"], 0.49 * w0["a"] + 0.42 * theta["a"] + 0.09 * w1["a"])


def _task(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(144, 1, 8, 8, generator=g)
    return x, (x.flatten(1) @ torch.randn(64, 10, generator=g)).argmax(1)


def _model(seed: int, x, y) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    return peers.repair_with_terms(model, [], x, y, 60, seed, lr=1e-2)


def test_training_the_control_point_makes_the_middle_fit_and_leaves_both_models_untouched():
    x, y = _task(1)
    a, b = _model(0, x, y), _model(1, x, y)  # two independent solutions: their straight-line middle fits badly
    states = [{k: v.clone() for k, v in m.state_dict().items()} for m in (a, b)]
    untrained = mcr.point(a, ({k: p.detach() for k, p in a.named_parameters()},
                              {k: (p.detach() + q.detach()) / 2 for (k, p), q in zip(a.named_parameters(), b.parameters())},
                              {k: p.detach() for k, p in b.named_parameters()}), 0.5)
    curve = mcr.train_curve(a, b, x, y, 60, 1e-2, seed=0)
    with torch.no_grad():
        for t in (0.0, 1.0):  # the ends are the two models, not trained
            assert all(torch.equal(p, q) for p, q in zip(mcr.point(a, curve, t).parameters(), (a, b)[int(t)].parameters()))
        mid = mcr.point(a, curve, 0.5)
        fit = [F.cross_entropy(m(x), y).item() for m in (untrained, mid)]
        assert fit[1] < fit[0] / 2 and (mid(x).argmax(1) == y).float().mean() > 0.9
    assert not mid.training and mid is not a
    assert all(torch.equal(v, s[k]) for m, s in zip((a, b), states) for k, v in m.state_dict().items())
    with pytest.raises(ValueError, match="same parameters"):
        mcr.train_curve(a, nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), x, y, 1, 1e-2, seed=0)


def test_the_command_line_refuses_repair_and_reversed_naming_mcr(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["backdoor_mcr.py", "--repair", "prune:0.1"])
    with pytest.raises(SystemExit):
        mcr.main()
    assert "not used by this study (each MCR setting names its own repair)" in capsys.readouterr().err


def test_the_along_table_pools_each_point_of_the_curve_as_the_summary_pools_a_method(tmp_path):
    import json

    from benchmarks import backdoor_protocol as bp

    patch, clean = bp.DEV_CASES[6], bp.DEV_CASES[16]
    rows = []
    for fold in range(2):
        rows += [{"seed": patch.seed, "fold": fold, "method": "none", "n": 100, "correct": 90, "lost": 0, "gained": 0,
                  "asr_hits": 40, "asr_n": 80},
                 {"seed": patch.seed, "fold": fold, "method": "mcr:100:0.01:0.3", "n": 100, "correct": 88, "lost": 2,
                  "gained": 0, "asr_hits": 1, "asr_n": 80,
                  "along": [[0.0, 90, 40], [0.3, 88 + fold, 1], [1.0, 91, 20 + fold]]},
                 {"seed": clean.seed, "fold": fold, "method": "none", "n": 100, "correct": 95, "lost": 0, "gained": 0},
                 {"seed": clean.seed, "fold": fold, "method": "mcr:100:0.01:0.3", "n": 100, "correct": 94, "lost": 1,
                  "gained": 0, "along": [[0.0, 95], [0.3, 94 - fold], [1.0, 95]]}]
    path = tmp_path / "mcr.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = mcr.along_table([patch, clean], path).splitlines()
    assert table[2:] == ["| mcr:100:0.01 t=0.0 | 0/1 | 1/1 | +0.00 | 50.0 | +0.00 | +0.00 |",  # the fold model itself
                         "| mcr:100:0.01 t=0.3 | 1/1 | 0/1 | -1.50 | 1.2 | -1.50 | -1.50 |",
                         "| mcr:100:0.01 t=1.0 | 0/1 | 1/1 | +1.00 | 25.6 | +0.00 | +0.00 |"]
