"""docsuser4 (docs trial of docs/recipes.md's tabular recipe): a CausalAuditCallback holding a BackdoorAudit of a
2-class model warned "Neural Cleanse flagged class 0 of a model with 2 classes" before training, from the audit's
dry run on 2 probe samples of the untrained model, while the audits of the fit (epochs 3 and 7) flagged nothing
(flagged_count 0): the page took that warning for the audit's finding ("it did when we ran it"). On 2 samples most
2-class models were flagged, so the warning is a ProbeContentsWarning, which the dry run leaves to the audits of the
whole probe; a run that flags still warns.

Session 29 (leftovers_s29d): those flags were mostly of a class both samples were predicted as, whose trigger had no
sample to move and shrank to nothing; such a class is no longer flagged (its own ProbeContentsWarning and note say
why). A genuine flag of one of two classes is built here from a model with a natural imbalance: class 1 is reached by
one column, class 0 by the mean of 31, and the 2 samples are one of each class."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit, Probe
from lightning_causal.causal import ProbeContentsWarning
from lightning_causal.datasets import make_synthetic_fairness
from lightning_causal.models import MLP

FLAG = "model with 2 classes"


class _Imbalanced(nn.Module):
    """2 classes, no planted trigger: class 1 when x0 is above 0.5 (steeply), class 0 when the mean of the other 31
    columns is above 0.5 (with x0 at most 0.5)."""

    def forward(self, x):
        return torch.stack([10.0 * (x[:, 1:].mean(1) - 0.5), 40.0 * torch.relu(x[:, 0] - 0.5)], 1)


def _model_and_probe() -> tuple[torch.nn.Module, Probe]:
    x = torch.rand(64, 32, generator=torch.Generator().manual_seed(0))
    x = x[[5, 0, *[i for i in range(64) if i not in (5, 0)]]]  # the first two: one sample of each class
    return _Imbalanced(), Probe(x)


def _docs_trial_model_and_probe() -> tuple[torch.nn.Module, Probe]:
    torch.manual_seed(0)
    data = make_synthetic_fairness(n=64, seed=0)
    return MLP(4, hidden=(8,), out_features=2).eval(), Probe(data.x, data.y)


def test_the_first_two_samples_are_one_of_each_class():
    model, probe = _model_and_probe()
    assert model(probe.first[:2]).argmax(1).tolist() == [0, 1]


def test_the_dry_run_does_not_warn_of_a_flag_its_two_samples_give():
    model, probe = _model_and_probe()
    audit = BackdoorAudit(steps=150)
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
    from lightning_causal.reporting.summary import markdown_summary

    model, probe = _model_and_probe()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ProbeContentsWarning)
        result = BackdoorAudit(steps=150).run(model, probe.subset(torch.arange(2)))
    assert result.scalars["flagged_count"] == 1 and not [w for w in caught if FLAG in str(w.message)]
    note = (f"class {result.meta['flagged'][0]} flagged among 2 classes (index ±0.67 at any sizes): a natural imbalance "
            "is flagged too, confirm with BackdoorAudit(trigger)")
    assert note in result.meta["notes"] and f"- backdoor: {note}" in markdown_summary(0, [result])  # whole on the card


def test_the_docs_trial_models_two_samples_flag_nothing_and_say_why():
    """The docs trial's model puts both of its first 2 samples in class 0: class 0's trigger had nothing to move. It
    was flagged (flagged_count 1, the warning above); now it is not, the audit says why in a note and a
    ProbeContentsWarning, and the dry run says nothing of it."""
    model, probe = _docs_trial_model_and_probe()
    assert model(probe.first[:2]).argmax(1).tolist() == [0, 0]
    audit = BackdoorAudit(steps=20)
    with pytest.warns(ProbeContentsWarning, match="every one of the 2 inputs is already predicted as class 0"):
        result = audit.run(model, probe.subset(torch.arange(2)))
    assert result.scalars["flagged_count"] == 0 and not [n for n in result.meta.get("notes", []) if "flagged among" in n]
    assert [n for n in result.meta["notes"] if n.startswith("every one of the 2 inputs is already predicted as class 0")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dry = audit.dry_run(model, probe)
    assert dry.scalars["flagged_count"] == 0
    assert not [w for w in caught if "already predicted" in str(w.message) or FLAG in str(w.message)]
