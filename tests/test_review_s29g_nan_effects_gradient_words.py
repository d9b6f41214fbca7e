"""Review of 40a0c4ef: CaptumBaseline on a float16 model whose logits overflow on a few probe samples.

Since 40a0c4ef the audit runs on such a model, and warned "Saliency gives exactly 0 in every probe sample to the
groups ['2', '3'] whose causal effect is not 0: no gradient reaches them", of two inputs the model ignores: their
causal effect is 0 on every sample but the overflowing ones, where it is inf - inf = NaN, and NaN != 0 read as an
effect.
"""

import warnings

import torch

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe
from tests.test_trial_newuser55_nan_scores import _overflowing


def _gradient_words(model: torch.nn.Module, x: torch.Tensor) -> list[str]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        CaptumBaseline(("Saliency",), target=1).run(model, Probe(x))
    return [str(w.message) for w in got if "no gradient reaches them" in str(w.message)]


def test_nan_effects_of_ignored_inputs_are_no_effect_a_gradient_misses():
    model, x = _overflowing()
    assert _gradient_words(model, x) == []  # before: groups ['2', '3'] named


def test_an_input_the_gradient_misses_is_still_named():
    model, x = _overflowing()
    model = model.float()
    with torch.no_grad():  # x_2 enters through a step: a causal effect, no gradient
        model[2].weight[1, 2] = 1.0
    step = model[1]

    class Step(torch.nn.Module):
        def forward(self, h):
            h = step(h)
            return torch.cat([h[:, :2], (h[:, 2:3] > 0).float(), h[:, 3:]], 1)

    model[1] = Step()
    words = _gradient_words(model, x.float())
    assert len(words) == 1 and "['2']" in words[0]
