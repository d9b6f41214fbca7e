"""The check of a model's noise, ``noise_scale`` then ``warn_noise`` where it is not 0, was written out four times
(unit_effects' shared path and its main path, check_func_noise of the Sobol' analysis, common_noise); it is one
function now, ``noise.noise_warned``, which every path calls once: one check and one warning per call, the effects
those of the model without its noise."""

import sys
import warnings

import pytest
import torch

from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine import noise

from .test_lead_s34_one_shared_row_noise_once import NoisyOnePrompt
from .test_leftovers_s34a_shared_units import Noisy, OnePrompt, ZeroShot, probe

unit_module = sys.modules["lightning_causal.causal.effects.unit_effects"]  # the package's name is the function's


def test_noise_warned_warns_where_the_model_draws_and_returns_the_scale() -> None:
    x = (torch.ones(4, 3),)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert noise.noise_warned(lambda x, rows: 2 * x, x) == 0.0
        assert noise.noise_warned(lambda x, rows: x + torch.randn_like(x), x) > 0
    assert len([w for w in seen if "random numbers" in str(w.message)]) == 1


@pytest.mark.parametrize(("noisy", "plain", "layer", "options"), [
    (Noisy, ZeroShot, "proj", {"unit_dim": -1, "max_batch_size": 3, "target": 1}),  # shared rows, told by their layout
    (NoisyOnePrompt, OnePrompt, "lin", {"target": 0}),  # one row for the batch: the prefix cache refused first
])
def test_each_shared_path_checks_the_noise_once(monkeypatch: pytest.MonkeyPatch, noisy, plain, layer, options) -> None:
    calls = []
    real = noise.noise_warned
    monkeypatch.setattr(unit_module, "noise_warned", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = probe(6)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got, info = unit_effects(noisy().double().eval(), x, layer, return_info=True, **options)
    assert info.path == "shared" and len(calls) == 1
    assert len([w for w in seen if "random numbers" in str(w.message)]) == 1
    torch.testing.assert_close(got, unit_effects(plain().double().eval(), x, layer, **options), rtol=0, atol=1e-12)
