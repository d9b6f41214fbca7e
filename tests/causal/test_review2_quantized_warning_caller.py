"""The dynamically quantized model's warning (4a81f01) is issued in Forward's constructor, which the
estimators and audits build at various depths: with a fixed stacklevel it pointed into the package
(input_effects.py, unit_effects.py), not at the user's call. It now points at the first frame outside it."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects

quantize_dynamic = pytest.importorskip("torch.ao.quantization").quantize_dynamic


def _quantized() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation of torch.ao.quantization
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


@pytest.mark.parametrize("estimate", [lambda m, x: input_effects(m, x), lambda m, x: unit_effects(m, x, "1")])
def test_the_warning_points_at_the_callers_line(estimate) -> None:
    x = torch.randn(6, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimate(_quantized(), x)
    ours = [w for w in caught if "dynamically quantized" in str(w.message)]
    assert len(ours) == 1
    assert ours[0].filename == __file__
