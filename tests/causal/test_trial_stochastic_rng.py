"""Every estimator of the core leaves the caller's random streams where they were, also for a model
that draws noise in eval mode, and says when its figures hold separate noise draws."""

import random
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import causal as C


class MCDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2, self.out = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.dropout(F.relu(self.fc1(x)), 0.3, training=True)
        return self.out(F.relu(self.fc2(h)))


X = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
TRIGGER = C.Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0]), 2.0, target=1)
CALLS = {
    "input_effects": lambda m: C.input_effects(m, X),
    "average_causal_effect": lambda m: C.average_causal_effect(m, X, values=torch.tensor([0.0, 1.0])),
    "unit_effects": lambda m: C.unit_effects(m, X, "fc1"),
    "causal_graph": lambda m: C.causal_graph(m, X, ["fc1", "fc2"], top_k=2),
    "layer_causal_map": lambda m: C.layer_causal_map(m, X, C.column_mask(4), layers=["fc1", "fc2"]),
    "counterfactual_explanation": lambda m: C.counterfactual_explanation(m, X[:2], target_class=1),
    "sobol_indices": lambda m: C.sobol_indices(C.class_probability(m, 0), C.UniformCube(4), 64, n_bootstrap=0),
    "trigger_effect": lambda m: C.trigger_effect(m, X, TRIGGER),
    "attack_success_rate": lambda m: C.attack_success_rate(m, X, torch.zeros(6, dtype=torch.long), TRIGGER),
    "suspect_units": lambda m: C.suspect_units(m, X, TRIGGER, "fc1"),
    "carrier_unit_effects": lambda m: C.carrier_unit_effects(m, X, lambda x: x.flip(1), "fc1"),
    "neural_cleanse": lambda m: C.neural_cleanse(m, X, 3, steps=2, channel_dim=None),
    "reverse_trigger": lambda m: C.reverse_trigger(m, X, 1, steps=2, channel_dim=None),
}


def _states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


@pytest.mark.parametrize("name", list(CALLS))
def test_a_noisy_model_leaves_the_global_random_streams_alone(name):
    model = MCDropout()
    torch.manual_seed(5)
    before = _states()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CALLS[name](model)
    after = _states()
    assert torch.equal(before[0], after[0]), f"{name} moved torch's global generator"
    assert np.array_equal(before[1], after[1]) and before[2] == after[2]


@pytest.mark.parametrize("name", ["causal_graph", "counterfactual_explanation", "carrier_unit_effects",
                                  "neural_cleanse", "reverse_trigger"])
def test_estimators_without_common_noise_say_their_figures_hold_noise(name):
    with pytest.warns(UserWarning, match=f"{name} does not use common random numbers"):
        CALLS[name](MCDropout())


def test_captum_attributions_of_a_noisy_model_say_their_figures_hold_noise():
    from lightning_causal.baselines.captum_methods import attribute

    model = MCDropout()  # built first: its __init__ reseeds the global generator (the state compared is after it)
    state = torch.get_rng_state()
    with pytest.warns(UserWarning, match="Captum's FeatureAblation does not use common random numbers"):
        attribute(model, X, "FeatureAblation", 0, feature_mask=C.column_mask(4))
    assert torch.equal(torch.get_rng_state(), state)


class FailsLater(nn.Module):
    """Draws noise in every pass and raises on the fourth pass (inside the estimator's rows)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.calls = nn.Linear(4, 2), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        noise = torch.randn_like(x)
        if self.calls > 3:
            raise RuntimeError("out of memory (simulated)")
        return self.fc(x + noise)


def test_an_estimator_that_fails_midway_still_restores_the_random_streams():
    model = FailsLater()
    torch.manual_seed(5)
    before = _states()
    with pytest.raises(RuntimeError, match="simulated"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        C.input_effects(model, X, max_batch_size=2)
    after = _states()
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]


def test_deletion_curves_of_a_noisy_model_hold_one_noise_per_sample():
    from lightning_causal.baselines.metrics import perturbation_curve

    class AddsNoise(nn.Module):  # x0 + x1 + eps: removing x2 and x3, which it ignores, moves nothing
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x[:, 0] + x[:, 1] + torch.randn(x.shape[0])).unsqueeze(1)

    scores = torch.tensor([[0.0, 0.1, 4.0, 3.0]]).expand(6, 4)  # x2, x3 ranked first: removed at steps 1 and 2
    with pytest.warns(UserWarning, match="run with common random numbers"):
        _, curves = perturbation_curve(AddsNoise(), X, C.column_mask(4), scores, score="raw", max_batch_size=4)
    assert torch.equal(curves[:, 1], curves[:, 0]) and torch.equal(curves[:, 2], curves[:, 0])
    torch.testing.assert_close(curves[:, 0] - curves[:, 4], X[:, 0] + X[:, 1])
