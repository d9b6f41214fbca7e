"""Review of 3a79d172 (newuser88's refusal of flat bag ids as many as the bags): where the model is the
``nn.EmbeddingBag`` itself (its module name ``''``), the refusal called it ``nn.EmbeddingBag 'model'`` and then, in its
way out, ``nn.EmbeddingBag "''"``. It names the model once, the same way in both; a bag inside a model keeps its name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects

IDS, OFFSETS = torch.tensor([7, 3, 13, 5, 9, 7]), torch.tensor([0, 2, 2, 3, 4, 6])


def test_a_model_that_is_the_bag_is_named_as_the_model():
    with pytest.raises(ValueError, match="Pad each sample's bag") as err:
        input_effects(nn.EmbeddingBag(20, 4).eval(), IDS, baseline=0, additional_forward_args=(OFFSETS,), target=1)
    message = str(err.value)
    assert "''" not in message and "'model'" not in message, message
    assert message.count("the model (an nn.EmbeddingBag)") == 2, message


def test_a_bag_inside_a_model_keeps_its_name():
    model = nn.Sequential(nn.EmbeddingBag(20, 4), nn.Linear(4, 2)).eval()

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, ids, offsets):
            return self.net[1](self.net[0](ids, offsets))

    with pytest.raises(ValueError, match="Pad each sample's bag") as err:
        input_effects(Wrapped().eval(), IDS, baseline=0, additional_forward_args=(OFFSETS,), target=1)
    assert str(err.value).count("nn.EmbeddingBag 'net.0'") == 2, str(err.value)
