"""Noise detection by the global generators: a deterministic model costs one small pass, a draw from torch's,
NumPy's or `random`'s generator is seen, and the batch-independence check does not refuse a model for
differences its own draws make (noise with few draws per sample made two runs alone agree by chance)."""

import random

import numpy as np
import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.noise import DRAW_SAMPLES, draws_random_numbers, noise_scale
from lightning_causal.causal.engine.prefix_cache import check_samples_independent
from lightning_causal.causal.engine.state import audit_mode


class Draws(nn.Module):
    """Returns 2x whatever it draws: the draw moves a generator, not the output."""

    def __init__(self, draw) -> None:
        super().__init__()
        self.draw = draw

    def forward(self, x):
        self.draw(x)
        return 2 * x


@pytest.mark.parametrize("draw", [
    lambda x: torch.rand(1),
    lambda x: np.random.rand(),
    lambda x: random.random(),
    lambda x: torch.nn.functional.dropout(x, 0.5, training=True),
], ids=["torch", "numpy", "random", "dropout"])
def test_a_draw_from_any_global_generator_is_seen_and_the_states_restored(draw):
    model, x = Draws(draw), torch.randn(20, 3)
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    with audit_mode(model):
        assert draws_random_numbers(Forward(model), (x,))
        assert not draws_random_numbers(Forward(nn.Linear(3, 2)), (x,))
    assert torch.equal(torch.get_rng_state(), states[0]) and np.array_equal(np.random.get_state()[1], states[1])
    assert random.getstate() == states[2]


def test_a_deterministic_model_costs_one_pass_of_a_few_samples():
    model, x = nn.Linear(3, 2), torch.randn(50, 3)
    rows = []
    model.register_forward_pre_hook(lambda m, inp: rows.append(inp[0].shape[0]))
    with audit_mode(model):
        assert noise_scale(Forward(model), (x,)) == 0.0
    assert rows == [DRAW_SAMPLES]


def test_the_batch_check_does_not_refuse_differences_a_models_draws_make():
    """Two runs alone that agree although the model draws (its output here ignores the draw; a noise of few
    draws per sample does the same by chance) and differ from the batch's output: before, this was
    refused as a batch-dependent forward; a model that draws nothing is still refused."""
    x = torch.randn(6, 3)
    batch_output = torch.full((6, 3), 100.0)  # what the batch gave: not what the samples give alone
    with audit_mode(nn.Identity()):
        check_samples_independent(Forward(Draws(lambda x: torch.rand(1))), (x,), batch_output, "Intervening")
        with pytest.raises(ValueError, match="Expected the model to treat samples independently"):
            check_samples_independent(Forward(Draws(lambda x: None)), (x,), batch_output, "Intervening")
