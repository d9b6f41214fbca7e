"""CaptumBaseline's note of a NoiseTunnel map the noise flattened (2bb38d55) compared every NoiseTunnel's map with the
method's without noise, whatever its ``nt_type``: VarGrad (the variance of the gradients over the noisy copies) is 0 on
a linear model at any noise, and SmoothGrad² averages squared gradients (of another scale: 0.0018² beside 0.0018), so
both were told "~0 on 100% of what Saliency without noise scores; its noise `stdevs=0.1` may saturate the model (tanh,
sigmoid)" of a linear model that nothing saturates. Only SmoothGrad (the default ``nt_type``), the method's mean over
the copies, is compared."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe
from tests.test_leftovers_s28b_tunnel_zeros import _X, _Scaled


def _noted(model, x, nt_type):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = CaptumBaseline(("Saliency", ("NoiseTunnel(Saliency)", {"nt_type": nt_type, "stdevs": 0.1}))).run(model, Probe(x))
    return ([n for n in result.meta.get("notes", []) if "may saturate" in n],
            [str(w.message) for w in seen if "may saturate" in str(w.message)], result)


@pytest.mark.parametrize("nt_type", ["vargrad", "smoothgrad_sq"])
def test_a_linear_model_under_vargrad_or_squares_is_not_said_to_saturate(nt_type):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.mul_(0.004)  # gradients of ~0.002: their squares ~4e-6, below 1% of them
    notes, told, result = _noted(model, torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), nt_type)
    tunnel, bare = result.maps["NoiseTunnel-Saliency"].abs(), result.maps["Saliency"].abs()
    assert float(tunnel.max()) < 0.01 * float(bare.max())  # what the check read as ~0
    assert notes == [] and told == []


def test_smoothgrad_of_a_saturated_tanh_is_still_noted():
    notes, told, _ = _noted(_Scaled(), _X, "smoothgrad")
    assert notes == [] and told == []  # stdevs=0.1 saturates nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CaptumBaseline(("Saliency", ("NoiseTunnel(Saliency)", {"nt_type": "smoothgrad"}))).run(_Scaled(), Probe(_X))
    assert [n for n in result.meta["notes"] if n.startswith("NoiseTunnel-Saliency: ~0 on 100%")]
