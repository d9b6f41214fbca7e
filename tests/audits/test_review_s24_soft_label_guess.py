"""Rows of non-negative values summing to 1 are soft labels only where the model is a classifier: a
regression's proportions (compositional targets) look the same. What the model says of its task wins
(label_task.class_distributions); where it says nothing the audits read the rows as soft labels and
warn, naming how to say a regression (GUESSED_SOFT_LABELS).

Before (fbe13a5): a model that said nothing had proportions read silently as a classifier's soft labels,
by their argmax (misclassified rows, group accuracy, clean accuracy of a regression). And FairnessAudit's
warning of a regression target failed on labels [N, C] (TypeError of round() on a row's list)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit, CounterfactualAudit, FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.label_task import class_distributions, class_indices, regression_labels
from lightning_causal.causal import AttributeFlip, Trigger
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings

X = torch.tensor([[0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 2.0], [1.0, 2.0, 0.0, 0.0]])
SHARES = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5], [0.4, 0.4, 0.2]])  # proportions: rows sum to 1


def _model(task: str | None = None) -> nn.Module:
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
        model.bias.zero_()
    if task is not None:
        model.hparams = {"task": task}
    return model.eval()


AUDITS = {
    "counterfactual": lambda: CounterfactualAudit(max_samples=1, settings=CounterfactualSettings(steps=5)),
    "fairness": lambda: FairnessAudit(AttributeFlip(0), sensitive=0),
    "backdoor": lambda: BackdoorAudit(Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 5.0]), target=2)),
}


@pytest.mark.parametrize("name", list(AUDITS))
def test_rows_summing_to_one_of_a_model_that_says_nothing_are_read_as_soft_labels_with_a_warning_naming_regression(name):
    with pytest.warns(UserWarning, match=r"summing to 1 and the model says nothing of its task.*'task': 'regression'"):
        AUDITS[name]().run(_model(), Probe(X, SHARES))


@pytest.mark.parametrize("name", list(AUDITS))
def test_a_model_that_says_multiclass_reads_soft_labels_without_the_guess_warning(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AUDITS[name]().run(_model("multiclass"), Probe(X, SHARES))


def test_a_model_that_says_regression_keeps_its_proportions_a_regression_target():
    model = _model("regression")
    assert not class_distributions(SHARES, model) and class_indices(SHARES, model) is SHARES
    assert regression_labels(SHARES, 3, model)
    with pytest.raises(ValueError, match="a regression has no class to flip"):
        AUDITS["counterfactual"]().run(model, Probe(X, SHARES))
    with pytest.warns(UserWarning, match=r"regression target such as \[0.5, 0.3, 0.2\]") as record:
        r = FairnessAudit(AttributeFlip(0), sensitive=0, compare="probability").run(model, Probe(X, SHARES))
    assert not any(k.startswith(("tpr/", "fpr/", "accuracy/")) for k in r.scalars)
    assert not any("says nothing of its task" in str(w.message) for w in record)
    # a [N, 2] target of a 2-output regression holding its loss: no class distribution either
    two = torch.tensor([[0.3, 0.7], [0.6, 0.4]])
    assert not class_distributions(two, nn.ModuleDict({"fc": nn.Linear(4, 2), "loss": nn.MSELoss()}))


def test_one_hot_rows_of_a_model_that_says_nothing_keep_the_multi_label_warning():
    one_hot = torch.eye(3)[[0, 2, 1, 0]]
    with pytest.warns(UserWarning, match=r"exactly one 1 per row.*'task': 'multilabel'"):
        assert torch.equal(class_indices(one_hot), torch.tensor([0, 2, 1, 0]))
    assert not class_distributions(one_hot, task="multilabel")


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_backdoor_audit_refuses_soft_labels_its_model_does_not_read_as_classes_naming_the_argmax_way_out(task):
    # BackdoorAudit said "convert them with `.long()`", which makes every soft row class 0 (bfe37be named the
    # argmax for CounterfactualAudit and FairnessAudit only)
    mixup = 0.7 * torch.eye(3)[[0, 1, 0, 2]] + 0.3 * torch.eye(3)[[1, 2, 2, 0]]
    with pytest.raises(ValueError, match=rf"soft labels but the model says it is {task}.*b\[1\]\.argmax\(1\)") as err:
        AUDITS["backdoor"]().run(_model(task), Probe(X, mixup))
    assert ".long()" not in str(err.value)


def test_a_two_output_regression_target_of_a_silent_model_is_read_with_the_warning_and_kept_once_it_says_regression():
    two, silent = torch.tensor([[0.3, 0.7], [0.6, 0.4]]), nn.Linear(4, 2)
    with pytest.warns(UserWarning, match=r"\[N, 2\] are rows of non-negative values summing to 1.*'task': 'regression'"):
        assert torch.equal(class_indices(two, silent), torch.tensor([1, 0]))
    silent.hparams = {"task": "regression"}
    assert class_indices(two, silent) is two
