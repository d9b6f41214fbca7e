"""Explaining the table of ``forward(self, image, tab)`` with the image as a keyword forward
argument: the table, passed first, lands in ``image`` and Python answers only "got multiple values
for argument 'image'". The error now says why and names the ways out (a forward that takes the
explained input first, or both inputs as a tuple), which give the same numbers."""

import pytest
import torch

from lightning_causal.causal import input_effects, unit_effects
from tests.helpers.multimodal import ImageTab, TabFirst


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
