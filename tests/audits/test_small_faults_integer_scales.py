"""The refusals of integer inputs that a model casts inside name how to read them as floats: they named int16's
``x.float() / 32768`` whatever the dtype, so int8 samples were told to divide by 32768 (values within +-0.004,
not [-1, 1)), in CounterfactualAudit's refusal, CaptumBaseline's of gradient methods and the first-order
estimates' (``gradient_cuts.not_float_input``). Each names its dtype's own range now (``float_reading``)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.gradient_cuts import float_reading


class _Samples(nn.Module):
    """A linear score of integer samples read as floats in [-1, 1) (``x.float() / 128`` of int8)."""

    def __init__(self, scale: float = 128.0) -> None:
        super().__init__()
        self.scale = scale
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(x.float() / self.scale)


def _int8() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(-128, 128, (8, 6), generator=g, dtype=torch.int8), torch.randint(0, 2, (8,), generator=g)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32])
def test_the_named_scale_maps_the_signed_range_onto_minus_one_to_one(dtype):
    scale = int(re.fullmatch(r"x\.float\(\) / (\d+) of \w+ samples", float_reading(dtype)).group(1))
    info = torch.iinfo(dtype)
    assert info.min / scale == -1.0 and 0.99 < info.max / scale < 1.0


def test_counterfactual_audit_names_int8s_own_scale():
    x, y = _int8()
    with pytest.raises(ValueError, match=re.escape("x.float() / 128 of int8 samples, reads them the same), with "
                                                   "`bounds=(-128, 127)` for torch.int8 samples")) as err:
        CounterfactualAudit().validate(_Samples().eval(), Probe(x, y))
    assert "32768" not in str(err.value)


@pytest.mark.parametrize(("dtype", "reading"), [(torch.int8, "x.float() / 128 of int8 samples"),
                                                (torch.uint8, "x.float() / 255 of uint8 pixels"),
                                                (torch.int16, "x.float() / 32768 of int16 samples")])
def test_captum_gradient_methods_name_the_dtypes_own_scale(dtype, reading):
    x = _int8()[0].to(torch.int16).abs().to(dtype)
    with pytest.raises(ValueError, match=r"perturbation methods for torch\.\w+ inputs") as err:
        CaptumBaseline(("IntegratedGradients",), baseline=0, target=1).run(_Samples().eval(), Probe(x))
    assert f"(a model that casts inside, {reading}, reads them the same)" in str(err.value)
    assert ("32768" in str(err.value)) == (dtype == torch.int16)


def test_first_order_estimates_name_int8s_own_scale():
    with pytest.raises(TypeError, match=re.escape("casts them in its first line (x.float(), x.float() / 128 of int8 samples)")) as err:
        input_effects(_Samples().eval(), _int8()[0], baseline=0, target=1, method="attribution")
    assert "32768" not in str(err.value)
    with pytest.raises(TypeError, match=re.escape("(x.float(), x.float() / 32768 of int16 samples)")):
        input_effects(_Samples(32768.0).eval(), _int8()[0].to(torch.int16), baseline=0, target=1, method="attribution")
