"""A CLIP-like zero-shot classifier's learnable temperature, `logit_scale` (one number the model itself holds), named as
a layer (newuser112's trial: /tmp/newuser112/t3.py, t6.py) was refused as 'a layer computed in functional code' with
the way to an nn.Identity on a layer's output. The refusal now names it as one number that scales every sample alike
and gives the way that measures it (an nn.Identity on a [1, 1] view: one unit every sample shares), which gives the hand
intervention's effects."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import UnitImportanceAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import SetTo, intervene, unit_effects


class ZeroShot(nn.Module):
    """logits = exp(logit_scale) * cos(image, class prompt); `view=True` runs the scale through an nn.Identity."""

    def __init__(self, view=False):
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(16, 6))
        self.prompts = nn.Parameter(torch.randn(5, 6))
        self.logit_scale = nn.Parameter(torch.tensor(2.0))
        self.temperature = nn.Identity()
        self.view = view

    def forward(self, pixels):
        scale = self.temperature(self.logit_scale.exp().view(1, 1)) if self.view else self.logit_scale.exp()
        return scale * F.normalize(self.image(pixels), dim=-1) @ F.normalize(self.prompts, dim=-1).T


def test_temperature_named_as_one_number_with_its_way():
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError) as err:
        unit_effects(ZeroShot().eval(), x, "logit_scale", target=0)
    text = str(err.value)
    assert "'logit_scale' is one number held by the model itself: a learnable temperature" in text
    assert "`scale = self.logit_scale_site(self.logit_scale.exp().view(1, 1))`" in text
    assert "functional code (F.linear" not in text  # not a layer of units
    with pytest.raises(ValueError, match="one number held by the model itself"):
        UnitImportanceAudit(["logit_scale"]).run(ZeroShot().eval(), Probe(x))


def test_the_way_gives_the_hand_intervention():
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    model = ZeroShot(view=True).eval()
    effects = unit_effects(model, x, "temperature", intervention=SetTo(1.0), target=0)  # [8, 1]: one unit
    with torch.no_grad():
        clean = model(x)[:, 0]
        scaled = F.normalize(model.image(x), dim=-1) @ F.normalize(model.prompts, dim=-1).T  # the scale set to 1
    torch.testing.assert_close(effects, (clean - scaled[:, 0])[:, None], atol=1e-5, rtol=0)
    with intervene(model, {"temperature": SetTo(1.0)}), torch.no_grad():
        torch.testing.assert_close(model(x), scaled, atol=1e-6, rtol=0)
