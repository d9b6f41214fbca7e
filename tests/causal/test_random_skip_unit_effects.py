"""unit_effects on a module the model skips at random (stochastic depth from a generator of its own, in eval
mode too): when the module ran in the site check but not in the pass over the probe, the refusal says why
(it was a bare "Expected module 'b' to be called by the model's forward")."""

import warnings

import pytest
import torch

from lightning_causal.causal import unit_effects
from tests.helpers.random_skip import RandomSkip


def test_a_module_that_stops_running_is_refused_naming_the_random_skip():
    torch.manual_seed(0)
    x = torch.randn(8, 4)
    model = RandomSkip(3).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"'b' to be called.*ran in an earlier pass.*skips at random"):
            unit_effects(model, x, "b", target=0, max_batch_size=2)
