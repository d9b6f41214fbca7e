"""Leftovers of session 38: an evidential classifier (its outputs Dirichlet concentrations, every entry at least 1)
was warned of twice by ``FairnessAudit(layers=...)`` (the carrier layers' passes opened a block of their own) and by
``BackdoorSuppressionTerm(trigger=None)`` (Neural Cleanse at set-up, then the term's first step). Once each now."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import BackdoorSuppressionTerm

WORDS = "as the concentrations alpha (evidence + 1) of an evidential (Dirichlet) classifier do"


class _Evidential(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(features, 16), nn.ReLU())
        self.out = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.out(self.body(x))) + 1


def _count(run) -> int:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run()
    return sum(WORDS in str(w.message) for w in seen)


def test_fairness_audit_with_carrier_layers_warns_once():
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    x[:, 3] = (torch.arange(64) % 2).float()
    probe = Probe(x, torch.arange(64) % 3)
    for layers in ([], ["body.1"]):
        assert _count(lambda layers=layers: FairnessAudit(AttributeFlip(3), sensitive=3, layers=layers).run(_Evidential(4), probe)) == 1


def test_backdoor_term_reversing_its_trigger_warns_once():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(64, 1, 8, 8, generator=g), torch.randint(0, 3, (64,), generator=g)
    model, term = _Evidential(64), BackdoorSuppressionTerm(reverse_options={"steps": 5, "batch_size": 32})

    def fine_tune() -> None:
        term.setup(model, x)
        for _ in range(2):
            term.loss(model, x[:16], y[:16])

    assert _count(fine_tune) == 1
