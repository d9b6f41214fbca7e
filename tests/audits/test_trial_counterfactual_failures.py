"""CounterfactualAudit on a model whose misclassified samples cannot be flipped: the report says
which class each failed sample could not reach; a wrong `target_class` is named as such."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.structure.counterfactuals import (
    CounterfactualSettings,
    counterfactual_explanation,
)
from lightning_causal.reporting.summary import markdown_summary

CLASSES = ["setosa", "versicolor", "virginica"]


def _model() -> nn.Module:
    """Class c where ``x_c`` is largest (logits = x)."""
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    return model.eval()


def test_the_text_card_names_the_class_a_failed_counterfactual_could_not_reach():
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    probe = Probe(x, torch.tensor([2, 1, 0]))  # rows 0 (setosa, label virginica) and 2 (virginica, label setosa) wrong
    audit = CounterfactualAudit(settings=CounterfactualSettings(steps=20), mask=torch.zeros(1, 3), class_names=CLASSES)
    r = audit.run(_model(), probe)  # every column frozen: nothing can be flipped
    rows = r.tables["counterfactuals"]
    assert [(row["index"], row["success"], row["counterfactual_predicted"]) for row in rows] == [(0, False, 0), (2, False, 2)]
    text = markdown_summary(0, [r])
    # before: "#0 setosa → setosa (not found)", which names no class the search was after
    assert "#0 setosa → virginica (not found): no change" in text
    assert "#2 virginica → setosa (not found): no change" in text


@pytest.mark.parametrize(("target_class", "error", "message"), [
    (torch.tensor([1.0, 0.0, 2.0]), TypeError, "`target_class` to hold integer class indices"),
    (5, ValueError, r"`target_class` to be in \[0, 2\] but got \[5\]"),
    (torch.tensor([0, 1]), ValueError, "`target_class` to have 1 or 3 entries but got 2"),
])
def test_a_wrong_target_class_is_named_as_the_parameter_the_user_passed(target_class, error, message):
    # before: "Expected argument `target` ...", a parameter counterfactual_explanation does not have
    x = torch.eye(3)
    with pytest.raises(error, match=message):
        counterfactual_explanation(_model(), x, target_class, CounterfactualSettings(steps=1))


@pytest.mark.parametrize(("l1", "l2"), [(0.0, 0.01), (0.0, 0.0)])
def test_a_random_start_leaves_an_input_already_of_the_target_class_unchanged(l1, l2):
    # before: with init_noise > 0 the search never looked at x itself, so an input of the target
    # class came back moved (L1 0.03 and every element changed with l2 only; the noise itself with no penalty)
    x = torch.tensor([[0.0, 3.0, 0.0], [1.0, 0.0, 0.0]])
    settings = CounterfactualSettings(l1=l1, l2=l2, steps=100, lr=0.05, init_noise=0.3)
    cf = counterfactual_explanation(_model(), x, 1, settings)
    assert cf.success.tolist() == [True, True]
    assert torch.equal(cf.counterfactuals[0], x[0]) and cf.l1[0] == 0 and cf.sparsity[0] == 0
    assert cf.l1[1] > 0  # row 1 (class 0) still moves


def test_bounds_given_as_a_list_are_refused_with_the_type_named():
    # before: "to be None or a pair (low, high) but got [0, 1]", and [0, 1] is a pair
    with pytest.raises(ValueError, match=r"a tuple \(low, high\) but got list \[0, 1\]"):
        counterfactual_explanation(_model(), torch.eye(3), 1, CounterfactualSettings(steps=1), bounds=[0, 1])
    with pytest.raises(ValueError, match=r"a tuple \(low, high\) but got list \[0, 1\]"):
        CounterfactualAudit(bounds=[0, 1])
