"""``BackdoorSuppressionTerm``'s causal-path penalty on suspect units that a reentrant activation checkpoint holds (a new
user's memory-saving trial).

Before: ``torch.utils.checkpoint(..., use_reentrant=True)`` runs its segment's forward under ``torch.no_grad``, so the
captured activations of a suspect layer inside it carried no autograd: the path penalty was a constant, its gradient
to every weight up to the layer none, and fine-tuning left the backdoor's path as it was, silently. Now the term
refuses, naming the layer and the ways out; ``use_reentrant=False`` gives the plain model's loss and gradients.
"""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.triggers import Trigger


class _Net(nn.Module):
    def __init__(self, mode: str = "plain") -> None:
        super().__init__()
        self.mode = mode
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        h = self.body(x) if self.mode == "plain" else checkpoint(self.body, x, use_reentrant=self.mode == "re")
        return self.head(h.flatten(1))


def _loss_and_grad(mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    plain = _Net()
    model = _Net(mode).train()
    model.load_state_dict(plain.state_dict())
    mask = torch.zeros(1, 8, 8)
    mask[:, 6:, 6:] = 1
    term = BackdoorSuppressionTerm(trigger=Trigger(mask, 1.0, 0), suspects={"body.3": [0, 1]}, path="units",
                                   unlearn_weight=0.0, distill_weight=0.0, augment=None)
    g = torch.Generator().manual_seed(1)
    loss = term.loss(model, torch.rand(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g))
    loss.backward()
    return loss.detach(), model.body[0].weight.grad


def test_suspects_in_a_reentrant_segment_are_refused_naming_the_layer():
    with pytest.raises(ValueError, match=r"suspect layer 'body.3' .*use_reentrant=True\) segment.*constant.*"
                                         r"use_reentrant=False.*path='logit'"):
        _loss_and_grad("re")


def test_suspects_in_a_non_reentrant_segment_give_the_plain_models_penalty_and_gradients():
    loss, grad = _loss_and_grad("nre")
    want_loss, want_grad = _loss_and_grad("plain")
    assert float(want_loss) > 0 and float(want_grad.abs().sum()) > 0
    assert torch.equal(loss, want_loss) and torch.equal(grad, want_grad)
