"""CounterfactualAudit on a forecaster (outputs [N, H], real-valued labels) said the labels were
'per-position or multi-label' and asked for labels of one class per sample; on a model of two
outputs with real-valued labels [N] it asked to cast them with `labels.long()`. Both are a
regression, which has no class to flip to, and the error now says so."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, Probe


@pytest.mark.parametrize("labels", [torch.randn(8, 3) * 2.5, torch.randn(8) * 2.5], ids=["horizons", "one_target"])
def test_a_regression_probe_is_refused_as_a_regression(labels: torch.Tensor) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(6 * 2, 3))  # [N, 6 steps, 2 features] -> 3 horizons
    with pytest.raises(ValueError, match=r"real-valued \[8(, 3)?\] \(a regression, e.g. a forecast\?\): a regression has no class") as info:
        CounterfactualAudit(max_samples=2).validate(model, Probe(torch.randn(8, 6, 2), labels))
    assert "multi-label" not in str(info.value) and ".long()" not in str(info.value)


def test_class_labels_stored_as_floats_still_get_the_cast_advice() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(6 * 2, 3))
    with pytest.raises(ValueError, match=r"labels\.long\(\)"):
        CounterfactualAudit(max_samples=2).validate(model, Probe(torch.randn(8, 6, 2), torch.tensor([0.0, 1, 2, 0, 1, 2, 0, 1])))
