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



def test_a_flag_among_two_classes_keeps_its_caveat_on_the_result_whatever_the_warning_filters():
    """Since the two-class warning is a ProbeContentsWarning, a user who filters that category (as docs/api.md advises
    for warnings about what the samples hold) lost the only word that a flag of one of 2 classes may be a natural
    imbalance: the text card and the report showed the flag alone. The result keeps it as a note."""
    from lightning_causal.causal import ProbeContentsWarning
    from lightning_causal.reporting.summary import markdown_summary

    model, probe = _model_and_probe()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ProbeContentsWarning)
        result = BackdoorAudit(steps=20).run(model, probe.subset(torch.arange(2)))
    assert result.scalars["flagged_count"] == 1 and not [w for w in caught if FLAG in str(w.message)]
    note = (f"class {result.meta['flagged'][0]} flagged among 2 classes, where a natural imbalance is flagged too: "
            "confirm with a known trigger, BackdoorAudit(trigger)")
    assert note in result.meta["notes"] and f"- backdoor: {note}" in markdown_summary(0, [result])  # whole on the card
