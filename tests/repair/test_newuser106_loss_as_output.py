"""A model that returns its own loss beside the logits (a Hugging Face model given ``labels=`` with
``return_dict=False``: ``(loss, logits)``; a ``forward(x, y)`` returning ``{"loss", "logits"}``): an ``output=``
that picks the loss, a 0-dim value, is refused naming where the rows are, in the estimators and in a repair term
(which crashed with ``IndexError: slice() cannot be applied to a 0-dim tensor`` where it took CausalRepairModule's
``output="loss"``); the logits picked give the numbers of the logits-only model (newuser106)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import AttributeFlip, input_effects
from lightning_causal.repair import CounterfactualFairnessTerm


class OwnLoss(nn.Module):
    """``forward(x, y=None)``: ``{"loss", "logits"}`` (the loss only with labels), or ``(loss, logits)``."""

    def __init__(self, as_tuple: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        self.as_tuple = as_tuple

    def forward(self, x, y=None):
        logits = self.net(x)
        if y is None:
            return (logits,) if self.as_tuple else {"logits": logits}
        loss = F.cross_entropy(logits, y)
        return (loss, logits) if self.as_tuple else {"loss": loss, "logits": logits}


def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    x[:, 0] = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    return x, torch.tensor([0, 1, 1, 0, 1, 0])


def test_loss_element_of_a_tuple_is_refused_naming_the_logits():
    torch.manual_seed(0)
    model = OwnLoss(as_tuple=True).double()
    x, y = _batch()
    with pytest.raises(ValueError, match=r"`output=0` picked a 0-dim value .* the loss .* at `output=1`"):
        input_effects(model, x, output=0, additional_forward_args={"y": y})
    picked = input_effects(model, x, output=1, additional_forward_args={"y": y})
    alone = input_effects(model.net, x)  # the logits-only network: the same effects
    assert torch.allclose(picked, alone, atol=1e-12)


def test_repair_term_given_the_loss_refuses_naming_its_output():
    torch.manual_seed(0)
    model = OwnLoss().double()
    x, y = _batch()
    term = CounterfactualFairnessTerm(AttributeFlip(0), output="loss")  # as it takes CausalRepairModule(output="loss")
    with pytest.raises(ValueError, match=r"CounterfactualFairnessTerm .*0-dim value .* at `output='logits'`.* of its own"):
        term.loss(model, x, y, additional_forward_args={"y": y})
    own = CounterfactualFairnessTerm(AttributeFlip(0), output="logits").loss(model, x, y, additional_forward_args={"y": y})
    # the labels passed to forward follow the paired rows; the logits-only network gives the same penalty
    assert own.item() > 0
    assert torch.allclose(own, CounterfactualFairnessTerm(AttributeFlip(0)).loss(model.net, x, y), atol=1e-12)


def test_repair_on_the_models_own_loss_with_the_terms_on_its_logits():
    """``output="loss"`` with ``task_loss=lambda loss, y: loss`` trains on the model's own loss; a term with its own
    ``output="logits"`` compares the logits (the docs' way, docs/your_model.md 'Models that return their own loss')."""
    from lightning_causal.repair import CausalRepairModule

    torch.manual_seed(0)
    model = OwnLoss().double()
    x, y = _batch()
    term = CounterfactualFairnessTerm(AttributeFlip(0), weight=2.0, output="logits")
    repair = CausalRepairModule(model, [term], output="loss", task_loss=lambda loss, _: loss,
                                unpack_batch=lambda b: (b[0], b[1], {"y": b[1]}))
    total, logs = repair.objective((x, y), epoch=0)
    task = F.cross_entropy(model.net(x), y)
    penalty = CounterfactualFairnessTerm(AttributeFlip(0)).loss(model.net, x, y)
    assert torch.allclose(logs["repair/task_loss"], task.detach(), atol=1e-12)
    assert torch.allclose(total, task + 2.0 * penalty, atol=1e-12)
