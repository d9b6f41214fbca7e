"""The text card named a tabular audit's groups by bare ids, 'groups: 0 (positive_rate 0.0732), 1
(positive_rate 0.276)' (newuser9's Adult trial): which attribute and which of its values a group is
was nowhere on the card. Each row of the ``groups`` table now names the column and its value."""

import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.causal import AdditiveNoiseSCM, AttributeFlip
from lightning_causal.reporting.summary import markdown_summary

NAMES = ["age", "sex_Male"]


def _probe() -> Probe:
    x = torch.tensor([[0.5, 0.0], [1.0, 1.0], [-0.5, 0.0], [0.0, 1.0]] * 4)
    return Probe(x, torch.tensor([0, 1, 0, 1] * 4))


def _model() -> nn.Module:
    model = nn.Linear(2, 2)
    with torch.no_grad():  # class 1 iff sex_Male: positive rates 0 and 1 by hand
        model.weight.copy_(torch.tensor([[0.0, 0.0], [0.0, 4.0]]))
        model.bias.copy_(torch.tensor([0.0, -2.0]))
    return model


def test_the_groups_table_and_the_card_name_the_sensitive_column_and_its_value() -> None:
    for audit in (FairnessAudit(AttributeFlip("sex_Male", columns=NAMES)),
                  FairnessAudit(AttributeFlip(1), feature_names=NAMES),
                  FairnessAudit(lambda x: torch.stack([x[:, 0], 1 - x[:, 1]], 1), sensitive="sex_Male", feature_names=NAMES)):
        result = audit.run(_model(), _probe())
        assert [(r["name"], r["positive_rate"]) for r in result.tables["groups"]] == [("sex_Male=0", 0.0), ("sex_Male=1", 1.0)]
        assert "groups: sex_Male=0 (positive_rate 0), sex_Male=1 (positive_rate 1)" in markdown_summary(0, [result])


def test_a_coded_attribute_is_named_by_its_values_and_an_unnamed_column_keeps_its_ids() -> None:
    x = _probe().inputs * torch.tensor([1.0, 2.0]) - torch.tensor([0.0, 1.0])  # sex coded -1 / +1
    result = FairnessAudit(AttributeFlip(1, values=(-1.0, 1.0)), feature_names=NAMES).run(_model(), Probe(x))
    assert [r["name"] for r in result.tables["groups"]] == ["sex_Male=-1", "sex_Male=1"]
    scm = AdditiveNoiseSCM(NAMES, {"age": ["sex_Male"]}).fit(_probe().inputs)
    assert [r["name"] for r in FairnessAudit(scm, "sex_Male").run(_model(), _probe()).tables["groups"]] == ["sex_Male=0", "sex_Male=1"]
    assert all("name" not in r for r in FairnessAudit(AttributeFlip(1)).run(_model(), _probe()).tables["groups"])
