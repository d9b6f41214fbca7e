"""An autoencoder's reconstruction [N, 1, 8, 8] is no class score: the Sobol' analysis refused it
without naming `output=` (every other estimator names it), and the way out named for a 4-D output
spoke only of segmentation maps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, patch_mask, sobol_indices
from lightning_causal.causal.sensitivity import class_probability
from lightning_causal.causal.sensitivity.samplers import EmpiricalMarginals


def _autoencoder():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 64), nn.Unflatten(1, (1, 8, 8))).eval()


def test_sobol_of_a_reconstruction_names_output():
    x = torch.rand(20, 1, 8, 8)
    mask = patch_mask((1, 8, 8), 4)
    func = class_probability(_autoencoder(), reference=x, input_shape=x.shape[1:])
    with pytest.raises(ValueError, match=r"pass `output=`.*autoencoder's reconstruction"):
        sobol_indices(func, EmpiricalMarginals(x.flatten(1), groups=mask.flatten()), n=8)


def test_effects_of_a_reconstruction_name_a_pixel_or_a_region():
    with pytest.raises(ValueError, match=r"autoencoder's reconstruction, `out\[:, :, i, j\]`"):
        input_effects(_autoencoder(), torch.rand(4, 1, 8, 8), patch_mask((1, 8, 8), 4))
