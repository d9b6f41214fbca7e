"""A model given its labels returns ``(loss, logits)`` (a Hugging Face model with ``return_dict=False``): with no
``output=``, the refusal advised ``output=0`` (the first tensor: the loss, which ``check_not_a_loss`` then refuses)
and ``out[0]`` as the logits in both modes; it now names ``output=1`` and says what element 0 is (review of
newuser106's e7e82519)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import input_effects


class _LossFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 3)

    def forward(self, x, y):
        logits = self.net(x)
        return F.cross_entropy(logits, y), logits


def test_default_output_of_loss_and_logits_advises_the_logits():
    torch.manual_seed(0)
    model, x, y = _LossFirst(), torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    with pytest.raises(TypeError) as err:
        input_effects(model, x, additional_forward_args={"y": y})
    message = str(err.value)
    assert "e.g. `output=1`" in message and "`output=0` is a 0-dim value" in message
    assert "e.g. `output=0`" not in message and "out[0] if isinstance" not in message
    followed = input_effects(model, x, output=1, additional_forward_args={"y": y})  # the advice followed
    assert torch.allclose(followed, input_effects(model.net, x), atol=1e-6)


def test_tuple_of_logits_and_aux_keeps_its_advice():
    class Aux(nn.Module):
        def forward(self, x):
            return x[:, :2], x.sum(1)

    with pytest.raises(TypeError, match=r"e\.g\. `output=0` .*out\[0\] if isinstance"):
        input_effects(Aux(), torch.randn(4, 3))
