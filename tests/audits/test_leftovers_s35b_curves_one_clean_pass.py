"""CaptumBaseline's deletion and insertion curves ran the model on the clean probe once per curve (two per method:
about 8% of the curves' passes on a video model), for an output the audit's own clean pass had given. The audit now
hands its clean pass (and whether it moved a global generator) to ``perturbation_curve(clean=)``: no clean pass inside
the curves, the same curves."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline
from lightning_causal.baselines import metrics as M
from lightning_causal.causal.engine.noise import GeneratorWatch


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).eval()


def test_the_curves_run_no_clean_pass_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = _model(), torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
    inside, clean_passes = [False], [0]
    real = M.perturbation_curve

    def curve(*args, **kwargs):
        inside[0] = True
        try:
            return real(*args, **kwargs)
        finally:
            inside[0] = False

    def hook(_module, inputs, _out) -> None:
        if inside[0] and inputs[0].shape == x.shape and torch.equal(inputs[0], x):
            clean_passes[0] += 1

    monkeypatch.setattr(M, "perturbation_curve", curve)
    handle = model.register_forward_hook(hook)
    try:
        result = CaptumBaseline(("Saliency", "InputXGradient")).run(model, Probe(x))
    finally:
        handle.remove()
    assert clean_passes[0] == 0
    assert len(result.curves["deletion"]) == len(result.curves["insertion"]) == 4  # x, the causal effects and 2 methods


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_a_clean_pass_given_gives_the_same_curves(mode: str) -> None:
    model, x = _model(), torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
    scores = torch.randn(10, 6, generator=torch.Generator().manual_seed(2))
    mask = torch.arange(6).unsqueeze(0)
    with GeneratorWatch() as watch:
        out = model(x)
    alone = M.perturbation_curve(model, x, mask, scores, mode=mode, target=1)
    given = M.perturbation_curve(model, x, mask, scores, mode=mode, target=1, clean=(out.detach(), watch.moved))
    assert all(torch.equal(a, b) for a, b in zip(alone, given))
    with pytest.raises(ValueError, match=r"Expected argument `clean` to be None or \(the explained output \[10, \.\.\.\]"):
        M.perturbation_curve(model, x, mask, scores, mode=mode, clean=out[:3])


def test_a_deterministic_clean_pass_given_costs_no_pass_but_the_curve() -> None:
    model, x = _model(), torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
    with GeneratorWatch() as watch:
        out = model(x)
    rows: list[int] = []
    model.register_forward_pre_hook(lambda _m, inputs: rows.append(inputs[0].shape[0]))
    M.perturbation_curve(model, x, torch.arange(6).unsqueeze(0), torch.randn(10, 6), target=1, max_batch_size=4096,
                         clean=(out.detach(), watch.moved))
    assert watch.moved is False and rows == [10 * 7]  # the 7 points of 10 curves in one pass: no clean, no noise pass
    rows.clear()
    M.perturbation_curve(model, x, torch.arange(6).unsqueeze(0), torch.randn(10, 6), target=1, max_batch_size=4096)
    assert rows == [10, 10 * 7]  # its own clean pass, which tells the model draws nothing
