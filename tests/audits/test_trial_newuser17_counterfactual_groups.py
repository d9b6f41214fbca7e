"""A ``Counterfactual`` of one's own whose ``groups(x)`` numbers intersections (sex × race), in ``FairnessAudit``."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, Counterfactual

# columns: sex (0/1), race (0/1), score; the model says class 1 where score + sex > 0.5
X = torch.tensor([[0, 0, 1.0], [0, 0, 0.0], [0, 1, 1.0], [1, 0, 0.0], [1, 0, -1.0], [1, 1, 0.0], [1, 1, 2.0], [0, 1, 0.0]])


def _model() -> nn.Module:
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]))
        model.bias.copy_(torch.tensor([0.0, -0.5]))
    return model


class SexByRace(Counterfactual):
    column = 0

    def flip_counterfactual(self, x):
        out = x.clone()
        out[:, 0] = 1 - out[:, 0]
        return out

    def groups(self, x):
        return (2 * x[:, 0] + x[:, 1]).long()


class NamedSexByRace(SexByRace):
    group_names = ("female, white", "female, black", "male, white", "male, black")


def _rows(counterfactual):
    result = FairnessAudit(counterfactual, feature_names=["sex", "race", "score"]).run(_model(), Probe(X))
    return result, result.tables["groups"]


def test_intersectional_groups_are_not_named_as_values_of_the_sensitive_column():
    result, rows = _rows(SexByRace())
    # decisions: score + sex > 0.5 -> [1, 0, 1, 1, 0, 1, 1, 0]; groups 2 sex + race -> [0, 0, 1, 2, 2, 3, 3, 1]
    assert [r["group"] for r in rows] == [0, 1, 2, 3]
    assert [r["positive_rate"] for r in rows] == [0.5, 0.5, 0.5, 1.0]
    assert result.scalars["demographic_parity_difference"] == 0.5
    # before: named 'sex=0' .. 'sex=3', as if group 3 were the rows of sex 3
    assert all("name" not in r for r in rows)


def test_group_names_of_the_counterfactual_name_the_rows():
    _, rows = _rows(NamedSexByRace())
    assert [r["name"] for r in rows] == ["female, white", "female, black", "male, white", "male, black"]


def test_groups_that_are_the_column_values_keep_their_column_names():
    _, rows = _rows(AttributeFlip(0))
    assert [(r["name"], r["positive_rate"]) for r in rows] == [("sex=0", 0.5), ("sex=1", 0.75)]
