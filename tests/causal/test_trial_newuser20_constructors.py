"""Validation sweep (newuser20): samplers, SCM flips and structural functions built with a user's
usual mistakes.

ClassProbability(model, -1) was built and its first call said the model should return 'class -1'
(1.0: an IndexError inside torch); SCMFlip('scm', 'a') failed with 'substring not found' and took
values=(1.0,) or (1.0, 1.0); MLPFunction(lr=-1) was built (and would climb the loss);
sobol_indices(3, ...) failed with "'int' object is not callable" inside the pick-freeze loop."""

import pytest
import torch
from torch import nn

from lightning_causal import AdditiveNoiseSCM, sobol_indices
from lightning_causal.causal import ClassProbability, SCMFlip, UniformCube
from lightning_causal.causal.scm import MLPFunction

SCM = AdditiveNoiseSCM.linear(["a", "m"], {"m": {"a": 2.0}})


def test_valid_ones_still_work():
    assert SCMFlip(SCM, "a", values=(0.0, 1.0)).flip_counterfactual(torch.tensor([[0.0, 0.5]])).tolist() == [[1.0, 2.5]]
    model, x = nn.Linear(2, 3), torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ClassProbability(model, 2)(x), model(x).softmax(1)[:, 2].detach())
    assert MLPFunction(lr=0.1).lr == 0.1


@pytest.mark.parametrize("call, error, message", [
    (lambda: ClassProbability(nn.Linear(2, 3), -1), ValueError, r"`target` to be a non-negative int but got -1"),
    (lambda: ClassProbability(nn.Linear(2, 3), 1.0), ValueError, r"`target` to be a non-negative int but got 1.0"),
    (lambda: SCMFlip("scm", "a"), TypeError, r"`scm` to be an AdditiveNoiseSCM but got str"),
    (lambda: SCMFlip(SCM, "a", values=(1.0,)), ValueError, r"`values`"),
    (lambda: SCMFlip(SCM, "a", values=(1.0, 1.0)), ValueError, r"`values`"),
    (lambda: MLPFunction(lr=-1.0), ValueError, r"`lr` to be a positive number but got -1.0"),
    (lambda: MLPFunction(seed=1.5), ValueError, r"`seed` to be an int but got 1.5"),
    (lambda: sobol_indices(3, UniformCube(2), n=16), TypeError, r"`func` to be a callable \[M, D\] -> \[M\] .* but got int"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
