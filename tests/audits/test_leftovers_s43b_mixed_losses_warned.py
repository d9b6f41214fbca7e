"""A model holding a classification loss and a regression loss (a classifier's auxiliary consistency ``nn.MSELoss``
beside its ``nn.CrossEntropyLoss``), nothing stated, reads as no task: the audits fall back to the probe's labels and
outputs without a word (final read F's leftover). It is now warned, once a model, naming the losses held and the ways
out (``hparams.task``, a stated ``task_loss``), which then decide without a warning."""

import warnings

import pytest
from torch import nn

from lightning_causal.audits.label_task import label_task
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm


class _Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.loss, self.consistency = nn.Linear(4, 3), nn.CrossEntropyLoss(), nn.MSELoss()

    def forward(self, x):
        return self.fc(x)


def test_losses_of_two_tasks_held_and_nothing_stated_are_warned_once():
    net = _Classifier()
    with pytest.warns(UserWarning, match="holds losses of two tasks") as caught:
        assert label_task(net) is None
    text = str(caught[0].message)
    assert "CrossEntropyLoss (multiclass)" in text and "MSELoss (regression)" in text
    assert "hparams.task" in text and "task_loss=" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert label_task(net) is None  # once a model


def test_a_stated_task_decides_unwarned():
    said = _Classifier()
    said.hparams = {"task": "multiclass"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the module built inside too: its construction reads the task (mends_s43d)
        module = CausalRepairModule(_Classifier(), [CounterfactualFairnessTerm(AttributeFlip(0))],
                                    task_loss=nn.CrossEntropyLoss())
        assert label_task(module) == "multiclass" and label_task(said) == "multiclass"
