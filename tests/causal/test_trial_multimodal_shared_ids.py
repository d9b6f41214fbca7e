"""Masks of two inputs each numbered from 0, ``(quadrants 0..3, columns 0..4)``: by Captum's
convention an id in both inputs is one group, so "column 0" was column 0 and quadrant 0 set
together, with nothing said. A warning now names the shared ids and the renumbering; masks numbered
across the inputs, or one id shared on purpose, are not warned of."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class ImageTab(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.tab = nn.Linear(16, 2), nn.Linear(5, 2)

    def forward(self, image, tab):
        return self.image(image.flatten(1)) + self.tab(tab)


def _data():
    torch.manual_seed(0)
    quadrants = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    quadrants[..., :2, 2:], quadrants[..., 2:, :2], quadrants[..., 2:, 2:] = 1, 2, 3
    return ImageTab().double(), torch.randn(3, 1, 4, 4, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64), quadrants


def test_masks_numbered_from_zero_in_each_input_are_warned_of():
    model, image, tab, quadrants = _data()
    with pytest.warns(UserWarning, match=r"inputs 0 and 1 use the same group ids \(0, 1, 2, 3\).*`mask_1 \+ 4`"):
        effects = input_effects(model, (image, tab), (quadrants, torch.arange(5)[None]), target=1)
    with torch.no_grad():  # what group 0 is: quadrant 0 and column 0 at once
        i2, t2 = image.clone(), tab.clone()
        i2[(quadrants == 0).expand_as(i2)] = 0
        t2[:, 0] = 0
        joint = model(image, tab)[:, 1] - model(i2, t2)[:, 1]
    torch.testing.assert_close(effects[:, 0], joint, rtol=0, atol=1e-12)


def test_masks_numbered_across_inputs_or_one_shared_id_are_not():
    model, image, tab, quadrants = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        input_effects(model, (image, tab), (quadrants, torch.arange(4, 9)[None]), target=1)
        input_effects(model, (image, tab), (quadrants, torch.tensor([[0, 4, 5, 6, 7]])), target=1)  # a joint group 0
        input_effects(model, (image, tab), target=1)  # the default: one group per element, numbered across
