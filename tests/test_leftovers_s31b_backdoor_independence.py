"""leftovers_s31b: ``neural_cleanse``, ``reverse_trigger``, ``trigger_effect`` and ``attack_success_rate`` called directly
(not through ``BackdoorAudit``, which checks its probe with ``check_samples_independent``) gave a model that normalises
over the batch (a BatchNorm built with ``track_running_stats=False``) numbers of whichever rows shared a chunk, silently:
``trigger_effect`` on 8 samples gave ``-0.0023`` for sample 0 in one pass and ``0.0250`` with ``max_batch_size=4``. The
rows they run are now checked as the audit checks its probe, once per call (one pass of two rows), with its message."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse
from lightning_causal.causal.backdoor.reverse import reverse_trigger
from lightning_causal.causal.backdoor.triggers import Trigger, attack_success_rate, trigger_effect
from tests.causal.test_trial_stochastic_rng import MCDropout

X = torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 2, 0, 2, 0, 1, 0, 2])
TRIGGER = Trigger(torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]), torch.ones(1, 2, 2), target=1)
CALLS = {
    "neural_cleanse": lambda m: neural_cleanse(m, X, 3, steps=2),
    "reverse_trigger": lambda m: reverse_trigger(m, X, 1, steps=2),
    "trigger_effect": lambda m: trigger_effect(m, X, TRIGGER),
    "attack_success_rate": lambda m: attack_success_rate(m, X, Y, TRIGGER),
}


def _net(norm: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 6), norm, nn.ReLU(), nn.Linear(6, 3)).eval()


@pytest.mark.parametrize("name", list(CALLS))
def test_a_model_normalising_over_the_batch_is_refused(name: str) -> None:
    model = _net(nn.BatchNorm1d(6, track_running_stats=False))
    with warnings.catch_warnings(), pytest.raises(
            ValueError, match=rf"Expected the model to treat samples independently.*'2'\] have track_running_stats=False"
                              rf".*{name} runs rows of many samples in one batch"):  # before: no error
        warnings.simplefilter("ignore")
        CALLS[name](model)


@pytest.mark.parametrize("name", list(CALLS))
def test_a_per_sample_model_and_one_drawing_noise_still_run(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CALLS[name](_net(nn.LayerNorm(6)))
        if name == "trigger_effect":  # MC dropout: its draws are noise, not the batch's doing
            model, x = MCDropout(), torch.rand(6, 4)  # MCDropout seeds the generator itself
            state = torch.get_rng_state()
            effect = trigger_effect(model, x, Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0]), 2.0, 1))
            assert effect.shape == (6,) and torch.equal(torch.get_rng_state(), state)
