"""A multi-label classifier (trained with BCEWithLogitsLoss) whose probe rows happen to hold one
label each was read as a softmax classifier: the decision came from the rows alone, so a 2-row dry
run could pass where the full run refused (BackdoorAudit), and the audits explained its outputs as
the classes of one decision without a word. The model's own loss, metrics, task hyperparameter or
final activation now decide (label_task), whatever the rows hold."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit, InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.options import label_task, multi_hot_labels
from lightning_causal.causal.backdoor.triggers import Trigger


class Tagger(nn.Module):
    """Three sigmoid labels; its loss a submodule, as a LightningModule holds it."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.loss = loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _probe() -> Probe:
    g = torch.Generator().manual_seed(0)
    y = nn.functional.one_hot(torch.arange(12) % 3, 3).float()  # one positive label per row, by chance
    y[5] = torch.tensor([1.0, 1.0, 0.0])  # ... except row 5
    return Probe(torch.randn(12, 4, generator=g), y)


def test_the_models_task_decides_not_the_rows():
    one_per_row = nn.functional.one_hot(torch.arange(6) % 3, 3).float()
    assert multi_hot_labels(one_per_row, Tagger(nn.BCEWithLogitsLoss()))
    assert not multi_hot_labels(one_per_row, Tagger(nn.CrossEntropyLoss()))
    assert not multi_hot_labels(one_per_row)  # nothing declared: one label per row reads as one class
    assert label_task(nn.Sequential(nn.Linear(4, 3), nn.Sigmoid())) == "multilabel"
    assert label_task(nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(1))) == "multiclass"
    both = Tagger(nn.BCEWithLogitsLoss())
    both.ce = nn.CrossEntropyLoss()
    assert label_task(both) is None  # signals that disagree say nothing


def test_dry_run_and_full_run_decide_alike_for_a_declared_multi_label_model():
    torch.manual_seed(0)
    model, probe = Tagger(nn.BCEWithLogitsLoss()), _probe()
    audit = BackdoorAudit(Trigger(torch.tensor([1.0, 0.0, 0.0, 0.0]), 3.0, target=1), max_samples=12)
    for run in (audit.dry_run, audit.run):  # the dry run's 2 rows hold one label each
        with pytest.raises(ValueError, match="multi-hot"):
            run(model, probe)


def test_effects_of_a_multi_label_model_warn_of_the_predicted_class_on_one_label_rows():
    torch.manual_seed(0)
    model, probe = Tagger(nn.BCEWithLogitsLoss()), _probe()
    one_label = probe.subset(slice(0, 4))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = InputEffectAudit(ace_values=None).run(model, one_label)
    assert any("multi-hot" in str(m.message) and "target=k" in str(m.message) for m in w)
    assert r.meta.get("multi_label") is True


def test_an_undeclared_models_dry_run_reads_the_labels_as_the_full_run_does():
    torch.manual_seed(0)
    model, probe = nn.Linear(4, 3), _probe()  # says nothing of its task: the labels decide, row 5 is multi-hot
    audit = BackdoorAudit(Trigger(torch.tensor([1.0, 0.0, 0.0, 0.0]), 3.0, target=1), max_samples=12)
    for run in (audit.dry_run, audit.run):
        with pytest.raises(ValueError, match="multi-hot"):
            run(model, probe)


def test_the_fairness_term_reads_the_models_task_too():
    from lightning_causal.causal.scm.attribute_flip import AttributeFlip
    from lightning_causal.repair.fairness import CounterfactualFairnessTerm

    torch.manual_seed(0)
    probe = _probe()
    x, y = probe.first.clone(), probe.labels[:4]  # one positive label per row in this batch
    x[:, 0] = (x[:, 0] > 0).float()  # the flipped binary attribute
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        CounterfactualFairnessTerm(AttributeFlip(0)).loss(Tagger(nn.BCEWithLogitsLoss()), x[:4], y)
    assert any("multi-hot" in str(m.message) for m in w)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        CounterfactualFairnessTerm(AttributeFlip(0)).loss(Tagger(nn.CrossEntropyLoss()), x[:4], y)
    assert not any("multi-hot" in str(m.message) for m in w)
