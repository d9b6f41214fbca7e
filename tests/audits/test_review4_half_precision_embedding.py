"""``embedding_output`` in float16 / bfloat16: a classifier returning softmax probabilities in bfloat16
(a confident row rounds to [1.0, 2e-4, ...], summing to 1 + 7e-4) was taken for an L2-normalised
embedding (its norm is 1 to the rounding), so CounterfactualAudit refused a correct classifier; a
bfloat16 L2-normalised embedding (norms 1 +- 1e-3) was not recognised. The tolerances follow the dtype."""

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


def test_bfloat16_unit_rows_are_an_embedding():
    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(4, 32, generator=g), dim=1).to(torch.bfloat16)
    assert (emb.double().norm(dim=1) - 1).abs().max() > 1e-4  # the rounding at stake
    assert embedding_output(emb) == "every row has unit L2 norm"
    assert embedding_output(torch.randn(4, 32, generator=g).to(torch.bfloat16)) is None


def test_counterfactual_audit_takes_a_bfloat16_classifier():
    model = ConfidentSoftmax().to(torch.bfloat16).eval()
    x = torch.eye(5, dtype=torch.bfloat16)
    assert embedding_output(model(x)) is None
    CounterfactualAudit().validate(model, Probe(x, torch.arange(5)))
