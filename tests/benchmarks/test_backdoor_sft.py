"""``benchmarks/backdoor_sft.py`` (a development-set study, issue 17): its method names are checked before a run, its
schedule is the cyclical one its docstring states, and ``repair_with_terms`` applies a schedule and SGD as asked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks import backdoor_peers as peers
from benchmarks import backdoor_sft as sft


def test_method_names_parse_and_refuse_with_the_form():
    assert sft.method_parts("sft:2:0.05:20:sgd") == (False, 2, 0.05, 20, "sgd")
    assert sft.method_parts("rsft:1:2e-2:40:adam") == (True, 1, 0.02, 40, "adam")
    for bad in ("sft:2:0.05:20", "sft:0:0.05:20:sgd", "sft:2:0:20:sgd", "sft:2:0.05:0:sgd", "sft:2:0.05:20:rmsprop",
                "ft:2:0.05:20:sgd", "sft:x:0.05:20:sgd", "sft:2:nan:20:sgd"):
        with pytest.raises(ValueError, match=rf"\(r\)sft:<cycles>.*{bad!r}"):
            sft.method_parts(bad)


@pytest.mark.parametrize("cycles", [1, 2, 3])
def test_the_schedule_rises_to_the_peak_once_a_cycle_and_ends_near_zero(cycles):
    steps, peak = 120, 0.1
    rates = torch.tensor([sft.cyclical(cycles, peak)(s, steps) for s in range(steps)])
    assert rates[0] == pytest.approx(peak / 25) and rates.max() == pytest.approx(peak)
    # falling linearly to peak / 2500, reached where the last cycle ends (one step after the last)
    assert sft.cyclical(cycles, peak)(steps, steps) == pytest.approx(peak / 2500)
    assert rates[-1] == pytest.approx(peak / 2500 + (peak - peak / 2500) * 2 * cycles / steps)
    tops = [s for s in range(1, steps - 1) if rates[s] >= rates[s - 1] and rates[s] > rates[s + 1]]
    assert tops == [int((c + 0.5) * steps / cycles) for c in range(cycles)]  # one peak in the middle of each cycle
    assert rates.min() >= peak / 2500 - 1e-12 and (rates[: steps // cycles // 2] > 0).all()


def _task(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(80, 1, 8, 8, generator=g)
    return x, (x.flatten(1) @ torch.randn(64, 10, generator=g)).argmax(1)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def test_repair_with_terms_applies_the_schedule_at_every_step_and_sgd():
    x, y = _task(1)
    model = _model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def constant(step, steps):
        calls.append((step, steps))
        return 4e-3

    a = peers.repair_with_terms(model, [], x, y, 3, 0, lr=1.0, schedule=constant)
    b = peers.repair_with_terms(model, [], x, y, 3, 0, lr=4e-3)
    assert calls == [(s, 9) for s in range(9)]  # 3 epochs of ceil(80 / 32) batches
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # the model left untouched
    # SGD at a rate of zero changes nothing (Adam's first step would, whatever the rate: it is not used)
    still = peers.repair_with_terms(model, [], x, y, 2, 0, lr=1.0, schedule=lambda s, n: 0.0, sgd=0.9)
    assert all(torch.equal(p, q) for p, q in zip(still.state_dict().values(), model.state_dict().values()))
    moved = peers.repair_with_terms(model, [], x, y, 2, 0, lr=0.5, sgd=0.9)
    assert not torch.equal(moved[1].weight, model[1].weight) and not moved.training


def test_sft_fits_the_clean_set_and_leaves_the_model_untouched():
    x, y = _task(2)
    model = _model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    repaired = sft.sft(model, x, y, 2, 0.1, 30, "sgd", seed=0)
    with torch.no_grad():
        assert (repaired(x).argmax(1) == y).float().mean() > 0.9 > (model(x).argmax(1) == y).float().mean()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()) and repaired is not model


@pytest.mark.parametrize("argv", [["--repair", "prune:0.1"], ["--reversed"]])
def test_the_command_line_refuses_repair_and_reversed_in_words_true_for_rsft(argv, monkeypatch, capsys):
    # rsft: keeps the default term's hold, so the refusal must not say SFT runs without the trigger=None term
    monkeypatch.setattr("sys.argv", ["backdoor_sft.py", *argv])
    with pytest.raises(SystemExit):
        sft.main()
    err = capsys.readouterr().err
    assert "--repair and --reversed are not used by this study (each SFT setting names its own repair)" in err
    assert "runs without" not in err
