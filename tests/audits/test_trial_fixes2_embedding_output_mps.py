"""`embedding_output` computed its norms in float64, which an MPS tensor refuses ("MPS framework
doesn't support float64"): every audit's embedding check then failed on an Apple GPU. On a device
without float64 it computes in float32. An MPS tensor is mimicked on the CPU by a subclass that
reports device type "mps" and refuses float64 as MPS does."""

import pytest
import torch
import torch.nn.functional as F

from lightning_causal.audits.options import embedding_output


class FakeMPS(torch.Tensor):
    """A CPU tensor that says it is on MPS and, like MPS, refuses float64."""

    @property
    def device(self):
        return torch.device("mps")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        wants = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, torch.dtype)]
        if func is torch.Tensor.double or torch.float64 in wants:
            raise TypeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64. "
                            "Please use float32 instead.")
        return super().__torch_function__(func, types, args, kwargs)


def _mps(t):
    return t.as_subclass(FakeMPS)


def test_the_fake_refuses_float64_as_mps_does():
    with pytest.raises(TypeError, match="float64"):
        _mps(torch.ones(2, 2)).double()
    with pytest.raises(TypeError, match="float64"):
        _mps(torch.ones(2, 2)).to(torch.float64)


def test_embedding_output_on_a_device_without_float64():
    torch.manual_seed(0)
    unit = F.normalize(torch.randn(6, 8), dim=1)
    assert embedding_output(_mps(unit)) == "every row has unit L2 norm"
    assert embedding_output(_mps(torch.randn(6, 8))) is None
    assert embedding_output(_mps(torch.softmax(torch.randn(6, 8), 1))) is None  # probabilities: no embedding
    assert embedding_output(_mps(unit * 1.001)) is None  # norms 1.001: outside 1e-4 in float32 too
