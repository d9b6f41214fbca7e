"""A multi-label model whose loss is computed in `training_step` (F.binary_cross_entropy_with_logits)
says nothing of its task; a probe whose rows hold exactly one positive each was read as one class per
sample in silence, and every audit explained 'the predicted class' without a word. The guess now
warns, naming `task='multilabel'` (hparams) and a held loss; declared, the audits read the labels
as multi-label (their multi-label warning); `task='multiclass'` and multi-hot rows are no guess."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.audits.options import multi_hot_labels


def _probe():
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(8, 3)
    y[torch.arange(8), torch.arange(8) % 3] = 1.0  # one positive per row
    return x, y


def _model(task=None):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    if task is not None:
        model.hparams = {"task": task}
    return model


def _messages(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught]


def test_one_hot_labels_of_a_model_that_says_no_task_warn_naming_the_task():
    x, y = _probe()
    said = _messages(lambda: InputEffectAudit(ace_values=None).run(_model(), Probe(x, y)))
    guessed = [m for m in said if "exactly one 1 per row" in m]
    assert guessed and "'task': 'multilabel'" in guessed[0] and "nn.BCEWithLogitsLoss()" in guessed[0]
    assert not any("multi-hot" in m for m in said)  # read as one class per sample


def test_a_declared_multilabel_task_reads_the_labels_as_multi_label():
    x, y = _probe()
    said = _messages(lambda: InputEffectAudit(ace_values=None).run(_model("multilabel"), Probe(x, y)))
    assert not any("exactly one 1 per row" in m for m in said)
    assert any("multi-hot" in m for m in said)  # the audit now says it explains one label of several


@pytest.mark.parametrize("case", ["multiclass", "multi-hot rows", "integer labels"])
def test_no_guess_no_warning(case):
    x, y = _probe()
    if case == "multi-hot rows":
        y[0, 1] = 1.0
    labels = y.long() if case == "integer labels" else y
    model = _model("multiclass" if case == "multiclass" else None)
    said = _messages(lambda: multi_hot_labels(labels, model))
    assert not any("exactly one 1 per row" in m for m in said)
    assert multi_hot_labels(labels, model) is (case == "multi-hot rows")
