"""Explaining the table of ``forward(self, image, tab)`` with the image as a keyword forward
argument: the table, passed first, lands in ``image`` and Python answers only "got multiple values
for argument 'image'". The error now says why and names the ways out (a forward that takes the
explained input first, or both inputs as a tuple), which give the same numbers."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects


class ImageTab(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(8 + 5, 2)

    def forward(self, image, tab):
        return self.head(torch.cat([self.conv(image), tab], 1))


class TabFirst(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tab, image):
        return self.model(image, tab)


def test_a_keyword_that_the_explained_input_fills_is_explained():
    torch.manual_seed(0)
    model, image, tab = ImageTab(), torch.randn(4, 1, 8, 8), torch.randn(4, 5)
    with pytest.raises(TypeError, match=r"passes `image` as a keyword, but the 1 explained input is passed first.*wrapper"):
        input_effects(model, tab, additional_forward_args={"image": image})
    with pytest.raises(TypeError, match=r"passes `image` as a keyword"):
        unit_effects(model, tab, "head", additional_forward_args={"image": image})
    reordered = input_effects(TabFirst(model), tab, target=1, additional_forward_args={"image": image})
    both = input_effects(model, (image, tab), (torch.zeros(1, 1, 8, 8, dtype=torch.long), torch.arange(1, 6)[None]), target=1)
    torch.testing.assert_close(reordered, both[:, 1:], rtol=0, atol=1e-6)


def test_another_type_error_is_left_as_it_is():
    model = ImageTab()
    with pytest.raises(TypeError) as info:
        input_effects(model, torch.randn(4, 1, 8, 8), additional_forward_args={"extra": torch.randn(4, 5)})
    assert "explained input" not in str(info.value)
