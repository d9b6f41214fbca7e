"""Trial newuser35: CaptumBaseline on uint8 images, bool masks and complex frames. The gradient
methods were refused with the advice for token ids ("use layer methods on the embeddings, e.g.
input_layer='bert.embeddings.word_embeddings'"), a float baseline as "a token id (pad or [MASK])";
the stability metric of a bool mask failed in torch ("Unsupported input type encountered for isin(): Bool")
and a complex probe in Captum's FeatureAblation ('"lt_cpu" not implemented for ComplexFloat')."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CaptumBaseline, audit_model


class _Cast(nn.Module):  # reads a mask or uint8 pixels as floats, as such models do
    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.scale = nn.Linear(8, 3), scale

    def forward(self, x):
        return self.fc(x.float() / self.scale)


def _batch(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 8, generator=g) < 0.5 if dtype == torch.bool else torch.randint(0, 256, (12, 8), generator=g).to(dtype)
    return x, torch.randint(0, 3, (12,), generator=g)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool])
def test_gradient_methods_on_pixels_or_masks_name_floats_not_embeddings(dtype):
    with pytest.raises((ValueError, MisconfigurationException), match=rf"perturbation methods for {dtype} inputs .*batch\[0\].float\(\)") as err:
        audit_model(_Cast(), CaptumBaseline(baseline=0), _batch(dtype), probe_size=12)
    assert "bert" not in str(err.value)
    with pytest.raises((ValueError, MisconfigurationException), match=r"`baseline` to be an int in \[0, 255\] .*for inputs of dtype torch.uint8 .*e.g. `baseline=0` \(black\)"):
        audit_model(_Cast(), CaptumBaseline(("FeatureAblation",)), _batch(torch.uint8), probe_size=12)


def test_feature_ablation_of_a_bool_mask_runs_and_ranks_by_the_weights():
    model = _Cast()
    (result,) = audit_model(model, CaptumBaseline(("FeatureAblation",), baseline=0, target=1), _batch(torch.bool), probe_size=12)
    assert result.scalars["compare/FeatureAblation/spearman"] == pytest.approx(1.0)  # ablating a bit is the exact effect
    assert 0.0 <= result.scalars["stability"] <= 1.0


def test_a_complex_probe_is_refused_naming_input_effects():
    class Abs(nn.Module):
        def forward(self, z):
            return self.fc(z.abs())

    model = Abs()
    model.fc = nn.Linear(8, 3)
    z = torch.randn(6, 8, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    with pytest.raises((ValueError, MisconfigurationException), match=r"take real inputs, but the probe holds torch.complex64: .*InputEffectAudit"):
        audit_model(model, CaptumBaseline(("FeatureAblation",)), (z, torch.zeros(6, dtype=torch.long)), probe_size=6)


def test_the_audits_take_false_as_a_masks_baseline():
    """InputEffectAudit(baseline=False) was refused when built ('a number, a tensor or a tuple of them but got
    False'), though False is what a bool mask's baseline is; a float input refuses it when the audit runs."""
    from lightning_causal import InputEffectAudit

    model, (x, y) = _Cast(), _batch(torch.bool)
    (result,) = audit_model(model, InputEffectAudit(baseline=False, target=1, ace_values=None), (x, y), probe_size=12)
    want = (x.float() * model.fc.weight[1].detach()).abs().mean()
    assert result.scalars["mean_abs_effect"] == pytest.approx(float(want), rel=1e-5)
    (result,) = audit_model(model, CaptumBaseline(("FeatureAblation",), baseline=False, target=1), (x, y), probe_size=12)
    assert result.scalars["compare/FeatureAblation/spearman"] == pytest.approx(1.0)
    with pytest.raises(TypeError, match=r"for inputs of dtype torch.float32 but got True: False and True are the baselines of bool"):
        audit_model(nn.Linear(8, 3), InputEffectAudit(baseline=True), torch.randn(6, 8), probe_size=6)
