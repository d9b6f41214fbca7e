"""``embedding_output`` in float16 / bfloat16: a classifier returning softmax probabilities in bfloat16
(a confident row rounds to [1.0, 2e-4, ...], summing to 1 + 7e-4) was taken for an L2-normalised
embedding (its norm is 1 to the rounding), so CounterfactualAudit refused a correct classifier. The
probabilities' tolerance follows the dtype; the unit norm's does not (no new false alarm on logits)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CounterfactualAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.options import embedding_output


class ConfidentSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 5)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(5) * 9.0)
            self.fc.bias.zero_()

    def forward(self, x):
        return torch.softmax(self.fc(x), dim=-1)


def _confident_rows(dtype):
    logits = torch.tensor([[9.0, 0.5, 0.2, 0.1, 0.3], [0.1, 9.5, 0.4, 0.2, 0.3]])
    return torch.softmax(logits.to(dtype), dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_confident_probabilities_are_no_embedding(dtype):
    rows = _confident_rows(dtype)
    assert (rows.double().sum(1) - 1).abs().max() > 1e-4 or dtype != torch.bfloat16  # the rounding at stake
    assert embedding_output(rows) is None
    assert embedding_output(rows[:1]) is None  # first_row_outputs reads one sample


def test_bfloat16_rows_near_the_unit_circle_are_no_embedding():
    # two logits of one row, 1e-2 off the unit circle: within bfloat16's rounding, yet a classifier's
    two_logits = torch.tensor([[0.6, -0.81]], dtype=torch.bfloat16)
    assert 1e-3 < abs(float(two_logits.double().norm()) - 1) < 4 * torch.finfo(torch.bfloat16).eps
    assert embedding_output(two_logits) is None
    assert embedding_output(F.normalize(torch.randn(3, 8), dim=1)) == "every row has unit L2 norm"


def test_counterfactual_audit_takes_a_bfloat16_classifier():
    model = ConfidentSoftmax().to(torch.bfloat16).eval()
    x = torch.eye(5, dtype=torch.bfloat16)
    assert embedding_output(model(x)) is None
    CounterfactualAudit().validate(model, Probe(x, torch.arange(5)))
