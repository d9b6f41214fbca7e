"""4262d908's way to the effect of a one-number parameter (an nn.Identity on a [1, 1] view) named the module
`self.temperature` and the value `self.<name>.exp()` whatever the parameter: a contrastive model's plain temperature,
`self.temperature = nn.Parameter(torch.tensor(0.07))` read as `logits / self.temperature`, was told
`self.temperature = nn.Identity()` (its own name: the parameter replaced) and
`self.temperature(self.temperature.exp().view(1, 1))` (the exponential of a value that is no log). The way now names
the module apart from the parameter and takes the exponential only of a parameter named a log; followed as printed,
SetTo(1.0) gives the hand computation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import SetTo, unit_effects


class Contrastive(nn.Module):
    def __init__(self, site=False):
        super().__init__()
        torch.manual_seed(0)
        self.image, self.prompts = nn.Linear(4, 6), nn.Parameter(torch.randn(3, 6))
        self.temperature = nn.Parameter(torch.tensor(0.07))
        if site:
            self.temperature_site = nn.Identity()
        self.site = site

    def forward(self, x):
        t = self.temperature_site(self.temperature.view(1, 1)) if self.site else self.temperature
        return F.normalize(self.image(x), dim=-1) @ F.normalize(self.prompts, dim=-1).T / t


def test_a_plain_temperature_is_given_a_module_of_another_name_and_no_exponential():
    x = torch.rand(8, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError) as err:
        unit_effects(Contrastive().eval(), x, "temperature", target=0)
    text = str(err.value)
    assert "self.temperature_site = nn.Identity() in __init__" in text
    assert "`scale = self.temperature_site(self.temperature.view(1, 1))`" in text and ".exp()" not in text
    model = Contrastive(site=True).eval()
    effects = unit_effects(model, x, "temperature_site", intervention=SetTo(1.0), target=0)
    with torch.no_grad():
        cos = F.normalize(model.image(x), dim=-1) @ F.normalize(model.prompts, dim=-1).T
    torch.testing.assert_close(effects, (cos[:, 0] / 0.07 - cos[:, 0])[:, None], atol=1e-5, rtol=1e-6)
