"""CounterfactualAudit(scale=) (newuser15 trial): the audit passes each feature's unit of cost to the
search, so its table's changes are those cheapest in MADs (income +20), not in raw units (savings +0.1)."""

import pytest
import torch

from lightning_causal import CounterfactualAudit, Probe
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from tests.helpers.models import credit_model

PROBE = Probe(torch.tensor([[60.0, 0.10], [100.0, 0.5]]), torch.tensor([1, 1]))  # row 0 rejected, 1.0 short


@pytest.mark.parametrize(("scale", "changes"), [(None, "savings: +0.1"), (torch.tensor([20.0, 0.05]), "income: +20")])
def test_audit_costs_in_the_given_units(scale, changes) -> None:
    audit = CounterfactualAudit(settings=CounterfactualSettings(l2=0.0), feature_names=["income", "savings"], scale=scale)
    (row,) = audit.run(credit_model(), PROBE).tables["counterfactuals"]
    assert row["index"] == 0 and row["success"]
    assert row["changes"] == changes


def test_audit_scale_checked_against_the_probe() -> None:
    with pytest.raises(ValueError, match=r"`scale` broadcastable to one input \[2\]"):
        CounterfactualAudit(scale=torch.ones(3)).run(credit_model(), PROBE)
    with pytest.raises(TypeError, match="`scale` to be None or Tensor but got list"):
        CounterfactualAudit(scale=[1.0, 2.0])


def test_audit_names_an_input_outside_bounds_by_its_probe_index() -> None:
    """The search's warning named row 0 of the explained subset; the audit names the probe's index and the column."""
    x = torch.tensor([[100.0, 0.5], [60.0, 0.10], [120.0, 0.0]])  # row 1 rejected (label 1); income 60 above the bound 50
    audit = CounterfactualAudit(bounds=(torch.tensor([0.0, 0.0]), torch.tensor([50.0, 1.0])), feature_names=["income", "savings"])
    with pytest.warns(UserWarning, match=r"^1 of 1 explained probe samples lie outside `bounds` .*first: row 1, feature 0 \(income\) "
                                         r"holds 60, bounds \[0, 50\]") as caught:
        audit.run(credit_model(), Probe(x, torch.tensor([1, 1, 1])))
    assert not [w for w in caught if "inputs lie outside" in str(w.message)]  # said once
