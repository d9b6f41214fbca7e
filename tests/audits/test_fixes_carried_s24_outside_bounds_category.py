"""CounterfactualAudit silenced the search's outside-`bounds` warning by its text (a filter on
".* inputs lie outside `bounds`"): a reworded message would have come through a second time. The core's
warning has its own category now, OutsideBoundsWarning (exported by lightning_causal.causal), and the audit
silences that category around its search, whatever the wording."""

import warnings

import pytest
import torch

import lightning_causal.causal.structure.counterfactuals as core
from lightning_causal import CounterfactualAudit, Probe
from lightning_causal.causal import OutsideBoundsWarning, counterfactual_explanation
from tests.helpers.models import credit_model

X = torch.tensor([[100.0, 0.5], [60.0, 0.10], [120.0, 0.0]])  # row 1 rejected (label 1); income 60 above the bound 50
BOUNDS = (torch.tensor([0.0, 0.0]), torch.tensor([50.0, 1.0]))


def test_the_core_warning_has_its_own_category_that_users_can_filter() -> None:
    assert issubclass(OutsideBoundsWarning, UserWarning)
    with pytest.warns(OutsideBoundsWarning, match="lie outside `bounds`"):
        counterfactual_explanation(credit_model(), X[1:2], 1, bounds=BOUNDS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", OutsideBoundsWarning)  # filtered by category: nothing else is raised
        counterfactual_explanation(credit_model(), X[1:2], 1, bounds=BOUNDS)


def test_the_audit_says_it_once_whatever_the_core_message_says(monkeypatch) -> None:
    def reworded(x, mutable, lo, hi, **_kwargs):  # the core's warning in other words
        if (mutable & ((x < lo) | (x > hi))).any():
            warnings.warn("some rows sit beyond the box", OutsideBoundsWarning, stacklevel=2)

    monkeypatch.setattr(core, "warn_outside_bounds", reworded)
    audit = CounterfactualAudit(bounds=BOUNDS, feature_names=["income", "savings"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(credit_model(), Probe(X, torch.tensor([1, 1, 1])))
    said = [str(w.message) for w in caught if issubclass(w.category, OutsideBoundsWarning)]
    assert len(said) == 1, said
    assert said[0].startswith("1 of 1 explained probe samples lie outside `bounds`")  # the audit's, by probe index
