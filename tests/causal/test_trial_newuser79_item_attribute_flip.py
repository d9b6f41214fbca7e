"""A protected attribute of every item of a list, x[..., k] of [N, L, F] (newuser79's trial): AttributeFlip(k)
and FairnessAudit(AttributeFlip(k)) refused the lists as 'Expected ... [N, D] with D > k' without a way to flip it;
the refusals now name the callable counterfactual, and that callable, followed as written, runs and keeps the
padded items."""

import re

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap
from lightning_causal.causal.scm import CallableCounterfactual


class Ranker(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.score = nn.Linear(3, 1)

    def forward(self, x, attention_mask):
        return self.score(x).squeeze(-1).masked_fill(attention_mask == 0, -1e4)


def _lists():
    g = torch.Generator().manual_seed(0)
    mask = (torch.arange(4) < torch.tensor([[4], [2], [3], [4], [3], [2]])).long()
    x = torch.randn(6, 4, 3, generator=g)
    x[..., 2] = torch.randint(0, 2, (6, 4), generator=g).float()
    return x * mask[..., None], mask


def _suggested(message):
    # the advice as written (since 4913ab2e a CallableCounterfactual(..., per_position=True) keeping the padded items)
    code = re.search(r"`(CallableCounterfactual\(lambda x: [^`]+)`", message).group(1)
    return eval(code.replace("k + 1", "3").replace("k:", "2:").replace(":k", ":2"),  # noqa: S307
                {"torch": torch, "CallableCounterfactual": CallableCounterfactual})


def test_flipping_an_attribute_of_every_item_names_the_callable_way_out():
    x, mask = _lists()
    model = Ranker().eval()
    with pytest.raises(ValueError, match="an attribute of every position") as err:
        counterfactual_fairness_gap(model, x, AttributeFlip(2), additional_forward_args={"attention_mask": mask})
    flip = _suggested(str(err.value))
    assert isinstance(flip, CallableCounterfactual) and flip.per_position  # the padded items kept by the gap (mask)
    flipped = flip.fn(x.clone())
    assert torch.equal(flipped[..., 2][mask == 1], 1 - x[..., 2][mask == 1])
    gap = counterfactual_fairness_gap(model, x, flip, additional_forward_args={"attention_mask": mask})
    assert gap["changed"] == 1.0
    with pytest.raises(ValueError, match="an attribute of every position"):
        FairnessAudit(AttributeFlip(2)).run(model, Probe(x, torch.zeros(6, dtype=torch.long),
                                                         additional_forward_args={"attention_mask": mask}))
