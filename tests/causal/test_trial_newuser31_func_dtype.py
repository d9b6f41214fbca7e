"""A function of one's own given to sobol_indices or intrinsic_causal_contributions gets the rows in
the sampler's dtype (float64) or the SCM's (float32); a model of another dtype inside it failed with
torch's bare "mat1 and mat2 must have the same dtype, but got Double and Float", which names neither
``func`` nor the rows (newuser31 trial, checking that float64 studies match to 1e-10). The error now
says which rows ``func`` got and how to cast them; other errors of ``func`` pass unchanged."""

import pytest
import torch
from torch import nn

from lightning_causal import causal as C


def _net(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype).eval()


def test_sobol_func_on_a_float32_model_says_the_rows_are_float64_and_how_to_cast():
    net = _net(torch.float32)
    with pytest.raises(RuntimeError, match=r"`func` failed on rows of dtype torch\.float64 .*x\.to\(torch\.float32\)") as info:
        C.sobol_indices(lambda x: net(x)[:, 0], C.UniformCube(4), n=16, n_bootstrap=0)
    assert "same dtype" in str(info.value) and isinstance(info.value.__cause__, RuntimeError)  # torch's text kept


def test_icc_func_on_a_float64_model_says_the_scm_rows_are_float32():
    net = _net(torch.float64)
    data = torch.randn(40, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    scm = C.AdditiveNoiseSCM(["a", "b", "c", "d"], {"b": ["a"]})
    scm.fit(data)
    # review of the change: the way out said x.float() here too, the rows' own dtype; it names the other one
    with pytest.raises(RuntimeError, match=r"rows of dtype torch\.float32 .*SCM's rows .*float32.*x\.to\(torch\.float64\)"):
        C.intrinsic_causal_contributions(lambda x: net(x)[:, 0], scm, n=16, n_bootstrap=0)
    cast = C.intrinsic_causal_contributions(lambda x: net(x.double())[:, 0], scm, n=16, n_bootstrap=0)
    module = C.intrinsic_causal_contributions(net, scm, n=16, n_bootstrap=0)  # the module path casts the same way
    assert torch.equal(cast.shapley, module.shapley)


def test_other_errors_of_a_func_pass_unchanged():
    def broken(x):
        raise RuntimeError("my own failure")

    with pytest.raises(RuntimeError, match=r"^my own failure$"):
        C.sobol_indices(broken, C.UniformCube(2), n=16, n_bootstrap=0)
