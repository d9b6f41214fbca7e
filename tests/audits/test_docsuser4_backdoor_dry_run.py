"""docsuser4 (docs trial of docs/recipes.md's tabular recipe): a CausalAuditCallback holding a BackdoorAudit of a
2-class model warned "Neural Cleanse flagged class 0 of a model with 2 classes" before training, from the audit's
dry run on 2 probe samples of the untrained model, while the audits of the fit (epochs 3 and 7) flagged nothing
(flagged_count 0): the page took that warning for the audit's finding ("it did when we ran it"). On 2 samples most
2-class models are flagged, so the warning is a ProbeContentsWarning, which the dry run leaves to the audits of the
whole probe; a run that flags still warns."""

import warnings

import pytest
import torch

from lightning_causal.audits import BackdoorAudit, Probe
from lightning_causal.datasets import make_synthetic_fairness
from lightning_causal.models import MLP

FLAG = "model with 2 classes"


def _model_and_probe() -> tuple[torch.nn.Module, Probe]:
    torch.manual_seed(0)
    data = make_synthetic_fairness(n=64, seed=0)
    return MLP(4, hidden=(8,), out_features=2).eval(), Probe(data.x, data.y)


def test_the_dry_run_does_not_warn_of_a_flag_its_two_samples_give():
    model, probe = _model_and_probe()
    audit = BackdoorAudit(steps=20)
    with pytest.warns(UserWarning, match=FLAG):  # the same 2 samples, audited: flagged, and said
        flagged = audit.run(model, probe.subset(torch.arange(2)))
    assert flagged.scalars["flagged_count"] == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dry = audit.dry_run(model, probe)
    assert dry.scalars["flagged_count"] == 1  # the dry run computes it as before
    assert not [w for w in caught if FLAG in str(w.message)]

