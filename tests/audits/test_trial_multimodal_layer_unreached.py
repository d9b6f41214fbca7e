"""CaptumBaseline(layers=[...]) on model(image, tab) explaining the image, the table a forward
argument: LayerConductance of a layer in the table's branch is 0 for every unit (the layer does not
depend on the image), so its compare/ metrics were NaN with no warning and no note. Both now say why;
a layer on the image's path is not warned of."""

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline, Probe


class ImageTab(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.tab = nn.Sequential(nn.Linear(5, 4), nn.Tanh())
        self.head = nn.Linear(12 + 4, 2)

    def forward(self, image, tab):
        return self.head(torch.cat([self.conv(image), self.tab(tab)], 1))


def _run(layer):
    torch.manual_seed(0)
    model, image, tab = ImageTab().eval(), torch.randn(8, 1, 8, 8), torch.randn(8, 5)
    return CaptumBaseline(["IntegratedGradients"], patch_size=4, layers=[layer]).run(model, Probe(image, None, (tab,)))


def test_a_layer_the_explained_input_does_not_reach_is_named():
    with pytest.warns(UserWarning, match=r"LayerConductance gives every unit of 'tab.0' exactly 0.*does not depend on the explained input"):
        result = _run("tab.0")
    assert math.isnan(result.scalars["compare/LayerConductance-tab.0/spearman"])
    assert any("'tab.0'" in note for note in result.meta["notes"])


def test_a_layer_on_the_explained_inputs_path_is_not():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _run("conv.0")
    assert not [w for w in caught if "does not depend on the explained input" in str(w.message)]
    assert not any("does not depend" in note for note in result.meta.get("notes", []))
