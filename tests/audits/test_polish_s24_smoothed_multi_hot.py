"""Smoothed multi-hot labels (a multi-label classifier's targets after label smoothing) are refused by
CounterfactualAudit as labels of no single class, named as such with the multi-label way out, not as a regression's."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.label_task import smoothed_multi_hot

# y * (1 - 0.1) + 0.1 / 2 of multi-hot rows: 0.05 / 0.95, rows summing to 0.15 ... 1.95
SMOOTHED = torch.tensor([[0.95, 0.05, 0.95], [0.05, 0.95, 0.05], [0.95, 0.95, 0.05], [0.05, 0.05, 0.95],
                         [0.95, 0.05, 0.05], [0.05, 0.95, 0.95]])


class _Tagger(nn.Module):
    def __init__(self, loss: nn.Module | None = None) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        if loss is not None:
            self.loss = loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _refusal(model: nn.Module) -> str:
    torch.manual_seed(0)
    with pytest.raises(ValueError) as err:
        CounterfactualAudit().validate(model, Probe(torch.randn(6, 4), SMOOTHED))
    return str(err.value)


@pytest.mark.parametrize("loss", [None, nn.BCEWithLogitsLoss()], ids=["says-nothing", "multilabel"])
def test_smoothed_multi_hot_labels_are_named_with_the_multi_label_way_out(loss):
    text = _refusal(_Tagger(loss))
    assert "real-valued" not in text and "regression" not in text
    assert "multi-hot labels smoothed (every entry 0.05 or 0.95" in text
    assert "with labels `(y[:, k] > 0.5).long()`" in text  # y[:, k].long() would make every label 0
    assert ("the model says nothing of its task" in text) == (loss is None)


def test_a_model_that_says_regression_keeps_the_regression_refusal():
    model = _Tagger(nn.MSELoss())
    assert "real-valued [6, 3] (a regression" in _refusal(model)


def test_smoothed_multi_hot_reads_two_values_only_and_not_class_distributions():
    assert smoothed_multi_hot(SMOOTHED) == (0.05, 0.95)
    assert smoothed_multi_hot(torch.tensor([[0.9, 0.1], [0.1, 0.9]])) is None  # smoothed one-hot: soft labels
    assert smoothed_multi_hot(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])) is None  # plain multi-hot
    assert smoothed_multi_hot(torch.tensor([[0.3, 1.2], [0.7, 0.2]])) is None  # a regression's targets
    assert smoothed_multi_hot(torch.tensor([[0.4, 0.45], [0.45, 0.4]])) is None  # both below 0.5: no 0/1 reading


def test_fairness_audit_names_them_too_with_its_own_way_out():
    from lightning_causal.audits import FairnessAudit

    torch.manual_seed(0)
    x = torch.randn(6, 4)
    x[:, 0] = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    audit = FairnessAudit(lambda v: torch.cat([1 - v[:, :1], v[:, 1:]], 1), sensitive=0)
    with pytest.raises(ValueError, match=r"multi-hot labels smoothed .* `output=lambda out: out\[:, \[k\]\]` with labels "
                                         r"`\(y\[:, k\] > 0\.5\)\.long\(\)`"):
        audit.run(_Tagger(), Probe(x, SMOOTHED))
