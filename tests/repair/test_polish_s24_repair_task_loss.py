"""The task loss a CausalRepairModule holds says the network's task to its terms (which are given the network,
not the repair module): soft labels of a cross-entropy repair are read as classes without the guess warning."""

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.audits.label_task import label_task
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair import CounterfactualFairnessTerm
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm
from lightning_causal.repair.module import CausalRepairModule

SOFT = torch.tensor([[0.7, 0.3], [0.9, 0.1]])  # mixup rows: classes 0 and 0


def _guesses(caught) -> list[str]:
    return [str(w.message) for w in caught if "the model says nothing of its task" in str(w.message)]


def _backdoor_step(task_loss):
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    trigger = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0]), target=1)
    term = BackdoorSuppressionTerm(trigger, unlearn_weight=0.5, path_weight=2.0, distill_weight=0.0, augment=None)
    repair = CausalRepairModule(model, [term], task_loss=task_loss)
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, logs = repair.objective((x, SOFT))
    return model, term, x, logs, caught


def test_a_cross_entropy_task_loss_says_the_soft_labels_are_classes_to_the_backdoor_term():
    model, term, x, logs, caught = _backdoor_step(nn.CrossEntropyLoss())
    assert _guesses(caught) == []
    assert label_task(model) == "multiclass"
    # read as each row's largest class: the same term value as with labels [0, 0]
    assert torch.isclose(logs["repair/" + term.name], term.loss(model, x, torch.tensor([0, 0])))


def test_a_task_loss_function_says_nothing_and_the_guess_still_warns():
    model, _, _, _, caught = _backdoor_step(F.cross_entropy)  # a task_step may override its use
    assert len(_guesses(caught)) == 1 and "soft labels" in _guesses(caught)[0]
    assert label_task(model) is None


def test_the_fairness_term_reads_one_hot_float_labels_without_the_guess():
    model = nn.Linear(3, 2)
    x = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.5, 0.1], [0.0, 0.3, 0.2], [1.0, 0.1, 0.9]])
    one_hot = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    term = CounterfactualFairnessTerm(lambda v: torch.cat([1 - v[:, :1], v[:, 1:]], 1))
    for loss, guessed in ((F.cross_entropy, 1), (nn.CrossEntropyLoss(), 0)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            CausalRepairModule(model, [term], task_loss=loss).objective((x, one_hot))
        term._labels_checked = term._task_read = False  # the next repair module's first step
        assert len(_guesses(caught)) == guessed


def test_the_networks_own_word_comes_first():
    model = nn.Linear(2, 2)
    CausalRepairModule(model, [], task_loss=nn.BCEWithLogitsLoss())
    assert label_task(model) == "multilabel" and label_task(nn.Sequential(model)) == "multilabel"
    model.hparams = {"task": "regression"}
    assert label_task(model) == "regression"
