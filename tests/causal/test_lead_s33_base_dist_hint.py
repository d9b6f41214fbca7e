"""``output="logits"`` on a model returning ``Independent(Bernoulli(logits=...))`` (a multi-label head as a distribution)
failed with torch's AttributeError alone; the refusal now names the base distribution's attribute, and that way runs and
equals a hand "set to 0, rerun, difference" loop."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Independent

from lightning_causal.audits import InputEffectAudit, Probe


class _MultiLabel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return Independent(Bernoulli(logits=self.head(x)), 1)


def test_the_refusal_names_the_base_distributions_attribute_and_that_way_matches_a_hand_loop():
    model, x = _MultiLabel().eval(), torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    with pytest.raises(TypeError, match=re.escape("its base distribution (Bernoulli) holds `logits`: pass "
                                                  "`output=lambda out: out.base_dist.logits`")):
        InputEffectAudit(output="logits", ace_values=None).run(model, Probe(x))
    result = InputEffectAudit(output=lambda out: out.base_dist.logits, target=0, ace_values=None).run(model, Probe(x))
    with torch.no_grad():
        base = model.head(x)[:, 0]
        hand = torch.stack([(model.head(x.index_fill(1, torch.tensor([j]), 0.0))[:, 0] - base).abs().mean() for j in range(4)])
    torch.testing.assert_close(result.vectors["mean_abs_effect"], hand, atol=1e-6, rtol=1e-5)


def test_an_attribute_nothing_holds_keeps_the_plain_refusal():
    model, x = _MultiLabel().eval(), torch.randn(4, 4)
    with pytest.raises(TypeError, match=r"AttributeError\(\"'Independent' object has no attribute 'scores'\"\)$"):
        InputEffectAudit(output="scores", ace_values=None).run(model, Probe(x))
