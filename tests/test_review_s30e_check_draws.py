"""Review of f388481e: the check that the model treats its samples independently, added to CounterfactualAudit,
BackdoorAudit and counterfactual_explanation, ran its passes of 2 samples on the global generators, so on a model that
draws noise in eval mode (MC dropout kept on) the search then drew other numbers than without the check: under one seed
the counterfactuals changed with the package version. The check's passes now leave the generators as they were: the
results equal those of the same calls with the check skipped."""

from __future__ import annotations

import torch

import lightning_causal.audits.counterfactual as audit_module
import lightning_causal.causal.structure.counterfactuals as core_module
from lightning_causal import CounterfactualAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import counterfactual_explanation
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from tests.causal.test_trial_stochastic_rng import (
    MCDropout,  # dropout kept on in eval: every pass draws
)


def _skipped(monkeypatch):
    for module in (audit_module, core_module):
        monkeypatch.setattr(module, "check_samples_independent", lambda *args, **kwargs: None)


def test_the_check_leaves_the_searchs_draws_as_they_were(monkeypatch):
    torch.manual_seed(0)
    model, x = MCDropout(), torch.randn(12, 4)
    probe = Probe(x, torch.randint(0, 3, (12,)))

    def both():
        torch.manual_seed(1)
        found = counterfactual_explanation(model, x[:3], 2, CounterfactualSettings(steps=20))
        torch.manual_seed(1)
        table = CounterfactualAudit(max_samples=4, settings=CounterfactualSettings(steps=20)).run(model, probe).tables["counterfactuals"]
        return found, table, torch.rand(1)

    found, table, after = both()
    _skipped(monkeypatch)
    found_skipped, table_skipped, after_skipped = both()
    assert torch.equal(found.counterfactuals, found_skipped.counterfactuals)  # before: other draws, another search
    assert table == table_skipped
    assert torch.equal(after, after_skipped)
