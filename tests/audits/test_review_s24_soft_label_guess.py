"""A regression model's probe of proportions ``[N, C]`` (rows summing to 1): FairnessAudit's warning
that the labels are a regression target showed the first rows' values with round(), which fails on
the lists of a 2-D tensor (TypeError: type list doesn't define __round__ method) instead of warning."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.label_task import class_distributions, class_indices, regression_labels
from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings

X = torch.tensor([[0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 2.0], [1.0, 2.0, 0.0, 0.0]])
SHARES = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5], [0.4, 0.4, 0.2]])  # proportions: rows sum to 1


def _model(task: str | None = None) -> nn.Module:
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
        model.bias.zero_()
    if task is not None:
        model.hparams = {"task": task}
    return model.eval()


def test_a_model_that_says_regression_keeps_its_proportions_a_regression_target():
    model = _model("regression")
    assert not class_distributions(SHARES, model) and class_indices(SHARES, model) is SHARES
    assert regression_labels(SHARES, 3, model)
    with pytest.raises(ValueError, match="a regression has no class to flip"):
        CounterfactualAudit(max_samples=1, settings=CounterfactualSettings(steps=5)).run(model, Probe(X, SHARES))
    with pytest.warns(UserWarning, match=r"regression target such as \[0.5, 0.3, 0.2\]") as record:
        r = FairnessAudit(AttributeFlip(0), sensitive=0).run(model, Probe(X, SHARES))
    assert not any(k.startswith(("tpr/", "fpr/", "accuracy/")) for k in r.scalars)
    assert not any("says nothing of its task" in str(w.message) for w in record)
    # a [N, 2] target of a 2-output regression holding its loss: no class distribution either
    two = torch.tensor([[0.3, 0.7], [0.6, 0.4]])
    assert not class_distributions(two, nn.ModuleDict({"fc": nn.Linear(4, 2), "loss": nn.MSELoss()}))
