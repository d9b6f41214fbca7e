"""A regression model says so by its loss "whatever the labels hold" (docs/your_model.md, 'Regression
and forecasting'): a Poisson regression's int64 counts were read as class indices all the same, so
FairnessAudit stopped with 'Expected argument `probe.labels` to hold classes 0 to 1 (the model
returns 2 logits)' on a model of one output, and CounterfactualFairnessTerm said nothing of its
saturated sigmoid. Integer labels stay class indices where the model says nothing or classifies."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm, FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.audits.options import regression_labels
from lightning_causal.causal import AttributeFlip


class _Counts(nn.Module):
    def __init__(self, loss: nn.Module | None = None) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 1)
        if loss is not None:
            self.loss = loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(12, 3, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return x, torch.tensor([0, 5, 27, 3, 1, 0, 2, 9, 0, 4, 1, 6])  # int64 counts


def test_regression_labels_follow_the_models_task_for_integer_labels_too():
    _, counts = _data()
    assert regression_labels(counts, 1, _Counts(nn.PoissonNLLLoss()))
    assert not regression_labels(counts, 1)  # nothing said: integer labels are class indices
    assert not regression_labels(counts, 1, _Counts(nn.CrossEntropyLoss()))


def test_fairness_audit_warns_and_leaves_out_label_metrics_for_integer_counts():
    x, counts = _data()
    torch.manual_seed(0)
    model = _Counts(nn.PoissonNLLLoss()).eval()
    with pytest.warns(UserWarning, match="regression target such as \\[5\\]"):  # the values of the dry run's 2 rows (dry_rows)
        result = FairnessAudit(AttributeFlip(0), compare="probability").run(model, Probe(x, counts))
    assert not any(k.startswith(("tpr", "fpr", "accuracy")) for k in result.scalars)
    p = torch.sigmoid(model(x)[:, 0]).detach()
    x_cf = x.clone()
    x_cf[:, 0] = 1 - x_cf[:, 0]
    p_cf = torch.sigmoid(model(x_cf)[:, 0]).detach()
    assert result.scalars["cf_gap"] == pytest.approx(float((p - p_cf).abs().mean()), abs=1e-6)


def test_a_classifier_keeps_its_integer_labels_and_label_metrics():
    x, counts = _data()
    torch.manual_seed(0)
    model = _Counts().eval()  # one logit, says nothing: labels 0/1 are classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = FairnessAudit(AttributeFlip(0)).run(model, Probe(x, (counts > 2).long()))
    assert any(k.startswith("tpr") for k in result.scalars)


def test_the_fairness_term_warns_on_integer_counts_of_a_regression():
    x, counts = _data()
    with pytest.warns(UserWarning, match="regression target"):
        CounterfactualFairnessTerm(AttributeFlip(0)).loss(_Counts(nn.PoissonNLLLoss()), x, counts)
