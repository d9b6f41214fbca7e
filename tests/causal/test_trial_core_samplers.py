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


def _cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))


def test_class_probability_of_an_image_model_takes_the_reference_shape_or_says_input_shape():
    # before: class_probability(cnn, reference=images) reshaped nothing, and sobol_indices failed inside
    # conv2d ("Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [.., 16]")
    from lightning_causal.causal import ClassProbability, EmpiricalMarginals
    from lightning_causal.causal.sensitivity.samplers import class_probability

    model, images = _cnn(), torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    f = class_probability(model, reference=images)
    assert f.input_shape == (1, 4, 4)
    flat = images.reshape(8, -1).double()
    with torch.no_grad():
        expected = torch.softmax(model(images), 1)[:, f.target]
    torch.testing.assert_close(f(flat), expected)
    r = sobol_indices(f, EmpiricalMarginals(images), n=16, n_bootstrap=0)
    assert r.first.shape == (16,)
    with pytest.raises(ValueError, match=r"flat rows of shape \[8, 16\].*`input_shape=`"):
        ClassProbability(model, 1)(flat)


def test_a_one_output_image_module_gets_the_samplers_rows_in_the_image_shape():
    # samplers.py: "images are handled flattened; sample_shape remembers the shape". A one-output
    # module passed as it is got the flat rows and failed inside conv2d.
    from lightning_causal.causal import EmpiricalMarginals

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 2), torch.nn.Flatten(), torch.nn.Linear(9, 1)).double()
    images = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sampler = EmpiricalMarginals(images)
    r = sobol_indices(model, sampler, n=16, n_bootstrap=0)
    ref = sobol_indices(lambda x: model(x.reshape(-1, 1, 4, 4)).detach()[:, 0], sampler, n=16, n_bootstrap=0)
    torch.testing.assert_close(r.first, ref.first, rtol=0, atol=1e-12)
    torch.testing.assert_close(r.total, ref.total, rtol=0, atol=1e-12)


def test_messages_name_the_parameter_and_what_was_given():
    # before: "'int' object is not iterable" and "... but got <class 'torch.Tensor'>" (the type, not the dtype)
    from lightning_causal.causal import EmpiricalMarginals, patch_mask

    with pytest.raises(TypeError, match=r"`shape` to be \(C, H, W\), \(H, W\) or \(C, D, H, W\) but got 8"):
        patch_mask(8, 2)
    with pytest.raises(TypeError, match=r"`data` to be a floating-point or integer tensor.*dtype torch.bool"):
        EmpiricalMarginals(torch.zeros(4, 3, dtype=torch.bool))  # integer codes are data since 064385f
    assert patch_mask(torch.Size([1, 4, 4]), 2).shape == (1, 1, 4, 4)
