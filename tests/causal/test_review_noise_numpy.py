"""Review of 1f26650/906db97: a model that draws its noise from NumPy's or Python's ``random``
generator was found to draw (noise.generator_states watches them) and the warning said its effects
ran with common random numbers, but CommonNoise seeded torch's generators only: the clean and the
intervened passes drew separate noise, and a feature the model ignores got effects up to 0.88.
CommonNoise now seeds NumPy's and ``random``'s generators too (restored afterwards)."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class Noisy(nn.Module):
    """y = (w . x) (1 + 0.5 eps), eps drawn per sample from NumPy or `random`; w_2 = 0 (x_2 ignored)."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source
        self.w = nn.Parameter(torch.tensor([[1.5], [-2.0], [0.0]], dtype=torch.float64), requires_grad=False)

    def forward(self, x):
        n = x.shape[0]
        eps = np.random.randn(n, 1) if self.source == "numpy" else [[random.gauss(0.0, 1.0)] for _ in range(n)]
        return (x @ self.w) * (1 + 0.5 * torch.as_tensor(eps, dtype=x.dtype))


@pytest.mark.parametrize("source", ["numpy", "random"])
def test_common_noise_holds_for_numpy_and_random_draws(source):
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        effects = input_effects(Noisy(source), x, target=0, max_batch_size=4)
    assert torch.equal(effects[:, 2], torch.zeros(9, dtype=torch.float64))  # the ignored feature: exactly 0
    # at fixed noise, effect_g = w_g x_g (1 + 0.5 eps_i): one eps per sample for both features
    factor = effects[:, :2] / (x[:, :2] * torch.tensor([1.5, -2.0], dtype=torch.float64))
    assert torch.allclose(factor[:, 0], factor[:, 1], rtol=1e-12, atol=1e-12)
    assert bool((factor[:, 0] - 1).abs().max() > 1e-3)  # the noise is there
    assert np.array_equal(np.random.get_state()[1], np_before) and random.getstate() == py_before
