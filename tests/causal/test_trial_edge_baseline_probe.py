"""Trial "edge": input effects of a probe that already equals the baseline everywhere (a probe of zeros
with the default baseline 0). Every effect is exactly 0 whatever the model, which a user read as "no
input matters", silently; a warning now says that no intervention changed the input. A probe that
differs from the baseline somewhere stays silent, and its effects match a brute-force do(x_g := b)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal import input_effects


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double().eval()


def test_a_probe_equal_to_the_baseline_warns():
    with pytest.warns(UserWarning, match=r"every group of every sample already equals `baseline`"):
        effects = input_effects(_model(), torch.zeros(5, 4, dtype=torch.float64))
    assert torch.equal(effects, torch.zeros(5, 4, dtype=torch.float64))
    with pytest.warns(UserWarning, match=r"already equals `baseline`"):
        InputEffectAudit(ace_values=None, baseline=1.0).run(_model().float(), Probe(torch.ones(5, 4)))


def test_a_probe_that_differs_somewhere_is_silent_and_exact():
    x = torch.zeros(5, 4, dtype=torch.float64)
    x[2, 1] = 0.7
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        effects = input_effects(model, x, target=0)
    with torch.no_grad():
        ablated = x.clone()
        ablated[:, 1] = 0.0
        expected = model(x)[:, 0] - model(ablated)[:, 0]
    torch.testing.assert_close(effects[:, 1], expected, rtol=0, atol=1e-12)
    assert torch.count_nonzero(effects[:, [0, 2, 3]]) == 0


def test_the_dry_run_of_two_zero_samples_does_not_speak_for_the_probe():
    # the callback's dry run on the first 2 samples, both zeros, warned that every sample equals the baseline
    x = torch.zeros(6, 4)
    x[3:, 1] = 1.0
    audit = InputEffectAudit(ace_values=None)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*already equals `baseline`", category=UserWarning)
        audit.dry_run(_model().float(), Probe(x))
        audit.run(_model().float(), Probe(x))
