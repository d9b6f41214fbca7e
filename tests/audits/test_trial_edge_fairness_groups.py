"""Trial "edge": FairnessAudit on a probe that holds one group of the sensitive column. The group
differences were NaN without a cause (the callback then warned of NaN values only); a note now says
that the probe holds one group. With both groups, demographic parity is the hand-computed difference
of the groups' positive rates."""

import math

import torch
from torch import nn

from lightning_causal import AttributeFlip, FairnessAudit
from lightning_causal.audits import Probe


def _model() -> nn.Linear:
    model = nn.Linear(2, 2)
    with torch.no_grad():  # class 1 iff x1 > 0: the sensitive column x0 is ignored
        model.weight.copy_(torch.tensor([[0.0, -1.0], [0.0, 1.0]]))
        model.bias.zero_()
    return model


def test_one_group_is_named_as_the_cause_of_nan():
    x = torch.tensor([[1.0, 0.5], [1.0, -0.3], [1.0, 0.2]])
    result = FairnessAudit(AttributeFlip(0), sensitive=0).run(_model(), Probe(x, torch.tensor([1, 0, 1])))
    assert math.isnan(result.scalars["demographic_parity_difference"])
    assert any("one group (group 1)" in note for note in result.meta["notes"])


def test_two_groups_give_the_difference_of_positive_rates():
    x = torch.tensor([[0.0, 0.5], [0.0, -0.3], [1.0, 0.2], [1.0, 0.4], [1.0, -0.1]])
    result = FairnessAudit(AttributeFlip(0), sensitive=0).run(_model(), Probe(x, torch.tensor([1, 0, 1, 1, 0])))
    assert math.isclose(result.scalars["demographic_parity_difference"], abs(1 / 2 - 2 / 3), rel_tol=1e-9)
    assert not any("one group" in note for note in result.meta.get("notes", []))
