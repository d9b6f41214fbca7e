"""Trial "edge": an additive-noise SCM fitted on as few rows as a node has parameters (its parents
and an intercept). The least-squares fit then reproduces the rows exactly, so the node's noise was 0
(the SCM took it for an exact function of its parents), silently; a warning now names the node.
With more rows the noise is the residual of the least-squares fit, as numpy computes it."""

import warnings

import numpy as np
import pytest
import torch

from lightning_causal import AdditiveNoiseSCM


def _x(n: int) -> torch.Tensor:
    return torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("n", [2, 3])
def test_too_few_rows_for_a_node_warn(n):
    with pytest.warns(UserWarning, match=r"rows fit the structural functions of \['c'\]"):
        scm = AdditiveNoiseSCM(["a", "b", "c"], {"c": ["a", "b"]}).fit(_x(n))
    assert float(scm.noise_std[2]) < 1e-6  # what the warning is about


def test_enough_rows_are_silent_and_match_least_squares():
    x = _x(12)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="AdditiveNoiseSCM.fit", category=UserWarning)
        scm = AdditiveNoiseSCM(["a", "b", "c"], {"c": ["a", "b"]}).fit(x)
    design = np.c_[np.ones(12), x[:, :2].numpy()]
    coef, *_ = np.linalg.lstsq(design, x[:, 2].numpy(), rcond=None)
    residual = x[:, 2].numpy() - design @ coef
    np.testing.assert_allclose(float(scm.noise_std[2]), residual.std(), rtol=1e-5)
