"""A language model's per-step logits [N, T, V] given to FairnessAudit, counterfactual_fairness_gap or
CounterfactualFairnessTerm were refused with "Expected model outputs [N] or [N, C] but got torch.Size([8, 6, 10])",
which named no way out, where the effect estimators name `output=` and the position to explain. The fairness
measures now give the same way out (`output=lambda out: out[:, -1]`, the next token)."""
import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm, FairnessAudit, TokenSwap
from lightning_causal.audits.base import Probe
from lightning_causal.causal import counterfactual_fairness_gap


class _NextToken(nn.Module):
    """ids [N, T] -> logits [N, T, V] of the next token at every step (a causal language model's head)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = nn.Embedding(10, 4), nn.Linear(4, 10)

    def forward(self, ids):
        return self.head(self.emb(ids).cumsum(1))


IDS = torch.randint(0, 10, (8, 6), generator=torch.Generator().manual_seed(0))
WAY = r"\[\d+, 6, 10\].*`output=`.*out\[:, -1\]"


def test_the_audit_and_the_gap_name_output():
    swap = TokenSwap([(3, 4)])
    with pytest.raises(ValueError, match=WAY):
        FairnessAudit(swap, sensitive=None).run(_NextToken(), Probe(IDS))
    with pytest.raises(ValueError, match=WAY):
        counterfactual_fairness_gap(_NextToken(), IDS, swap)
    gap = FairnessAudit(swap, sensitive=None, output=lambda out: out[:, -1]).run(_NextToken(), Probe(IDS))
    assert 0 <= gap.scalars["cf_gap"] <= 1


def test_the_repair_term_names_output():
    with pytest.raises(ValueError, match=WAY):
        CounterfactualFairnessTerm(TokenSwap([(3, 4)]), None).loss(_NextToken(), IDS, None)
