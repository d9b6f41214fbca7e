"""Dense-output trial: Captum's target of a dense output is a tuple, ``(class, i, j)`` for a pixel
of a segmentation map. Given to the audits it was refused with "Expected argument `target` to be
None or a non-negative int but got (1, 5, 2)", and to the estimators with "got <class 'tuple'>",
without the way to say it here; the messages name it, and that way gives Captum's own attributions
for the tuple target."""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings, InputEffectAudit, Probe
from lightning_causal.causal import input_effects


def _seg():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 3, 3, padding=1)).double().eval()
    return model, torch.randn(4, 1, 8, 8, dtype=torch.float64)


@pytest.mark.parametrize("make", [lambda: CaptumBaseline(("Saliency",), target=(1, 5, 2)), lambda: InputEffectAudit(target=(1, 5, 2))])
def test_an_audit_given_a_tuple_target_names_output_and_the_class(make):
    with pytest.raises(ValueError, match=r"got \(1, 5, 2\); .*`output=lambda out: out\[:, :, i, j\], target=class`"):
        make()


def test_an_estimator_given_a_tuple_target_names_output_and_the_class():
    model, x = _seg()
    with pytest.raises(TypeError, match=r"got <class 'tuple'>; .*`output=lambda out: out\[:, :, i, j\]`, `target=class`"):
        input_effects(model, x, target=(1, 5, 2), output=lambda out: out.mean((2, 3)))


def test_the_named_way_gives_captums_attributions_for_its_tuple_target():
    model, x = _seg()
    result = CaptumBaseline(("IntegratedGradients",), target=1, output=lambda out: out[:, :, 5, 2], patch_size=1,
                            settings=CompareSettings(score="raw")).run(model, Probe(x))
    reference = IntegratedGradients(model).attribute(x, target=(1, 5, 2), n_steps=16, method="gausslegendre")
    torch.testing.assert_close(result.maps["IntegratedGradients"].double(), reference, rtol=0, atol=1e-10)
