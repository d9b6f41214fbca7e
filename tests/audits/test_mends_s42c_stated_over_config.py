"""``label_task`` reads a Hugging Face classifier's config ``problem_type`` after the losses held and the ``task_loss``
a ``CausalRepairModule`` states, as docs/your_model.md orders them: the model computes that loss only where called
with labels, and a checkpoint fine-tuned single-label says nothing of a fit with ``BCEWithLogitsLoss``. Before, the
config outranked them (final read A, F1): a ``BertForSequenceClassification`` whose checkpoint says
``single_label_classification`` under ``CausalRepairModule(task_loss=nn.BCEWithLogitsLoss())`` read ``"multiclass"``
(the fairness term's multi-hot warning lost), and one held beside a ``BCEWithLogitsLoss`` read ``None``."""

from __future__ import annotations

import pytest
import torch.nn.functional as F
from torch import nn

from lightning_causal.audits.label_task import label_task, state_task
from lightning_causal.causal import TokenSwap
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm

transformers = pytest.importorskip("transformers")

from tests.audits.test_mends_s42f_aux_regression_loss import _classifier  # noqa: E402  (a tiny BERT head, config problem_type)


def test_a_stated_task_loss_says_the_task_over_the_checkpoints_problem_type():
    model = _classifier()
    assert label_task(model) == "multiclass"  # the config alone still says its task
    term = CounterfactualFairnessTerm(TokenSwap([(5, 6)]))
    CausalRepairModule(model, [term], task_loss=nn.BCEWithLogitsLoss())
    assert label_task(model) == "multilabel"
    assert term.task_of(model) == "multilabel"
    state_task(model, F.cross_entropy)  # a function says nothing: the config speaks again
    assert label_task(model) == "multiclass"


def test_a_held_loss_says_the_task_over_the_problem_type_of_the_classifier_it_holds():
    class Tagger(nn.Module):  # a LightningModule's layout: the HF classifier, its own multi-label loss
        def __init__(self) -> None:
            super().__init__()
            self.model, self.loss = _classifier(), nn.BCEWithLogitsLoss()

    assert label_task(Tagger()) == "multilabel"
    two = nn.ModuleDict({"a": _classifier(), "b": _classifier("regression")})
    assert label_task(two) is None  # two heads' configs that disagree say nothing
