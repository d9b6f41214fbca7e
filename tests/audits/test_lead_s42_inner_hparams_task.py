"""DISAGREEING_TASK's way out, a ``task`` hyperparameter, was read from the audited model's own ``hparams`` only, so a
network that said ``hparams.task`` inside a ``CausalRepairModule`` (the module the callback audits) was still read as
"disagreeing" through the repair module, warned again, and FairnessAudit compared the softmax where the network alone
was refused (final read F F2). A submodule's ``hparams.task`` now speaks as the model's own."""

import types
import warnings

from torch import nn

from lightning_causal.audits.label_task import label_task
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm


class _TabForSequenceClassification(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = types.SimpleNamespace(num_labels=3, problem_type="single_label_classification")
        self.f = nn.Linear(4, 3)

    def forward(self, x):
        return self.f(x)


class _Net(nn.Module):  # a classifier with an auxiliary consistency loss, its task said as the warning asks
    def __init__(self, task):
        super().__init__()
        self.head, self.consistency = _TabForSequenceClassification(), nn.MSELoss()
        self.hparams = {"task": task}

    def forward(self, x):
        return self.head(x)


def test_a_networks_said_task_speaks_through_the_repair_module():
    for task in ("multiclass", "multilabel", "regression"):
        net = _Net(task)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = CausalRepairModule(net, [CounterfactualFairnessTerm(AttributeFlip(0))])
            assert (label_task(net), label_task(module)) == (task, task)
        assert not [w for w in caught if "disagree" in str(w.message)]


def test_the_modules_own_word_comes_first():
    outer = nn.Sequential(_Net("multilabel"))
    outer.hparams = {"task": "multiclass"}
    assert label_task(outer) == "multiclass"
