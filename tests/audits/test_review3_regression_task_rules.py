"""A regression that says its task (an ``nn.MSELoss`` held as a submodule) with labels that look
like a classifier's: proportions summing to 1 (a compositional regression). FairnessAudit and the
repair term read the model's task (``regression_labels(..., model)``); the predicted-class and
softmax warnings and the figures' meta read the labels alone, so the audits explained the largest
of three regression outputs as a class without a word, and the figures said "class k"."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits.options import (
    names_meta,
    warn_predicted_class_of_regression,
    warn_softmax_of_regression,
)


class Proportions(nn.Module):
    """Predicts three shares that sum to 1, trained with a mean squared error."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.loss = nn.Linear(4, 3), nn.MSELoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _labels() -> torch.Tensor:
    return torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.0, 0.25, 0.75], [0.4, 0.4, 0.2]])


def _messages(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in seen]


def test_a_declared_regression_with_proportions_is_warned_of_as_the_fairness_audit_reads_it() -> None:
    model, labels, out = Proportions(), _labels(), torch.randn(4, 3)
    said = _messages(lambda: warn_predicted_class_of_regression("InputEffectAudit 'x'", labels, out, model=model))
    assert len(said) == 1 and "real-valued" in said[0] and "Pass `target=k`" in said[0]
    said = _messages(lambda: warn_softmax_of_regression("SobolAudit 'x'", labels, "`probability=False`", model=model))
    assert len(said) == 1 and "a regression?" in said[0]
    assert names_meta(None, None, outputs=out, labels=labels, model=model).get("regression") is True


def test_the_same_labels_of_a_model_that_says_nothing_stay_soft_class_labels() -> None:
    plain, labels, out = nn.Linear(4, 3), _labels(), torch.randn(4, 3)
    assert _messages(lambda: warn_predicted_class_of_regression("InputEffectAudit 'x'", labels, out, model=plain)) == []
    assert _messages(lambda: warn_softmax_of_regression("SobolAudit 'x'", labels, "`probability=False`", model=plain)) == []
    assert "regression" not in names_meta(None, None, outputs=out, labels=labels, model=plain)
