"""Trial (core): the samplers of `sobol_indices` as a researcher calls them."""

import pytest
import torch

from lightning_causal.causal import IndependentNormal, UniformCube, sobol_indices


def test_independent_normal_refuses_an_int_dimension_given_as_mean():
    # UniformCube(3) has three inputs; IndependentNormal(3) silently had ONE input of mean 3, so
    # sobol_indices of a three-input function failed deep inside the user's function (or, for
    # a function of x[:, 0] only, returned indices of the wrong problem).
    assert UniformCube(3).dim == 3
    with pytest.raises(TypeError, match=r"`mean`.*int 3.*IndependentNormal\(\[0.0\] \* 3\)"):
        IndependentNormal(3)


def test_independent_normal_still_takes_means_and_a_float_scalar():
    assert IndependentNormal([0.0] * 3).dim == 3
    assert IndependentNormal(torch.zeros(2)).dim == 2
    assert IndependentNormal(0.5).dim == 1
    # f = x0 + 2 x1 + 3 x0 x2 on standard normals: Var = 14, S = (1, 4, 0) / 14, ST = (10, 4, 9) / 14
    r = sobol_indices(lambda x: x[:, 0] + 2 * x[:, 1] + 3 * x[:, 0] * x[:, 2], IndependentNormal([0.0] * 3), n=2**12,
                      n_bootstrap=0)
    torch.testing.assert_close(r.total, torch.tensor([10.0, 4.0, 9.0], dtype=torch.float64) / 14, atol=0.03, rtol=0)
