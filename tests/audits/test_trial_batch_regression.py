"""CounterfactualAudit given a regression model (trial "batch")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, Probe


def test_a_regression_is_told_it_has_no_class_not_to_cast_its_targets():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    x = torch.randn(12, 5)
    y = 2 * x[:, 0] + x[:, 1] ** 2  # float regression targets
    # it asked for `labels.long()`, after which the audit refused the model's one output
    with pytest.raises(ValueError, match=r"needs logits \[N, classes >= 2\] but the model returned shape \[12, 1\] "
                                         r"\(a regression has no class to flip to\)") as info:
        CounterfactualAudit().validate(model, Probe(x, y))
    assert "labels.long()" not in str(info.value)
    with pytest.raises(ValueError, match="a regression has no class"):
        CounterfactualAudit().validate(model, Probe(x, y.round().long()))
    # a classifier with float 0./1. targets is still told about its labels
    with pytest.raises(ValueError, match=r"integer class labels .*labels\.long\(\)"):
        CounterfactualAudit().validate(nn.Linear(5, 2), Probe(x, (y > 0).float()))
