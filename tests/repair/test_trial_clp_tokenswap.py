"""CounterfactualFairnessTerm(TokenSwap(...)) against the gap a user compares it with: the term is a
mean over the whole batch (sentences without identity terms add 0), the gap a mean over the
sentences the swap changes, as the docstring says."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import TokenSwap, counterfactual_fairness_gap
from lightning_causal.repair import CounterfactualFairnessTerm

HE, SHE = 5, 6


class _Bag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb, self.out = nn.Embedding(12, 4).double(), nn.Linear(4, 2).double()
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = attention_mask.unsqueeze(-1).double()
        return self.out((self.emb(ids) * m).sum(1) / m.sum(1))


def test_abs_prob_is_the_gap_times_the_share_of_changed_sentences():
    ids = torch.tensor([[1, HE, 3, 2], [1, 4, SHE, 0], [1, 7, 8, 2], [1, 9, 2, 0]])
    mask = (ids != 0).long()
    args = {"attention_mask": mask}
    model = _Bag()
    gap = counterfactual_fairness_gap(model, ids, TokenSwap([(HE, SHE)]), additional_forward_args=args)
    term = CounterfactualFairnessTerm(TokenSwap([(HE, SHE)]), distance="abs_prob")
    value = term.loss(model, ids, None, additional_forward_args=args).item()
    assert gap["changed"] == 0.5 and gap["mean_abs"] > 1e-3
    assert value == pytest.approx(gap["mean_abs"] * gap["changed"], abs=1e-12)
    assert value == pytest.approx(float(gap["delta"].abs().mean()), abs=1e-12)
    assert "not for a token swap" in " ".join(CounterfactualFairnessTerm.__doc__.split())
