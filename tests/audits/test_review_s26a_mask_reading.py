"""The refusals of integer inputs name each dtype's own reading as floats (``gradient_cuts.float_reading``), but the
branch of uint8 pixels and bool masks kept one text for both: CounterfactualAudit told a bool mask probe 'a model
that casts inside, x.float() / 255, reads them the same' (a mask read as 0 and 1/255) and the first-order estimates
'x.float() / 255 inside reads them the same'; the int64 refusal named x.float() twice ('(x.float(), x.float() of
int64 values)'). Each names its own reading now: ``x.float()`` of bool masks, ``x.float() / 255`` of uint8 pixels."""

from __future__ import annotations

import re

import pytest
import torch

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.causal import input_effects
from tests.audits.test_small_faults_integer_scales import (
    _Samples,  # Linear(6, 2) of x.float() / scale
)


def _inputs(dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 2 if dtype == torch.bool else 256, (8, 6), generator=g).to(dtype)


@pytest.mark.parametrize(("dtype", "scale", "said"), [
    (torch.bool, 1.0, "x.float() of bool masks, reads them the same), with `bounds=(0, 1)` for bool masks"),
    (torch.uint8, 255.0, "x.float() / 255 of uint8 pixels, reads them the same), with `bounds=(0, 255)` for uint8 pixels"),
])
def test_counterfactual_audit_names_the_masks_and_the_pixels_own_reading(dtype, scale, said):
    x = _inputs(dtype)
    with pytest.raises(ValueError, match=re.escape(said)) as err:
        CounterfactualAudit().validate(_Samples(scale).eval(), Probe(x, torch.zeros(8, dtype=torch.long)))
    other = "/ 255" if dtype == torch.bool else "bool masks"
    assert other not in str(err.value)  # before: '/ 255' and both bounds whatever the dtype


@pytest.mark.parametrize(("dtype", "scale", "said"), [
    (torch.bool, 1.0, "(a model that casts inside, x.float() of bool masks, reads floats the same)"),
    (torch.uint8, 255.0, "(a model that casts inside, x.float() / 255 of uint8 pixels, reads floats the same)"),
    (torch.int64, 1.0, "casts them in its first line (x.float() of int64 values) reads float samples the same"),
])
def test_the_first_order_estimates_name_each_dtypes_own_reading(dtype, scale, said):
    with pytest.raises(TypeError, match=re.escape(said)) as err:
        input_effects(_Samples(scale).eval(), _inputs(dtype), baseline=0, target=1, method="attribution")
    if dtype == torch.bool:
        assert "/ 255" not in str(err.value)
