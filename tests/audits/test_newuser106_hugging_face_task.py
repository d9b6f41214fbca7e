"""A Hugging Face classifier computes its loss in its forward, so it holds no loss module: its config's
``problem_type`` (set by a sequence classifier at its first batch with labels) and a ``...ForTokenClassification``'s
cross-entropy say its task. Before, a two- or three-class head whose logits all lay in [0, 1] (early in training,
often: only their differences are trained) was warned about as independent probabilities by every audit that takes
a softmax (``CaptumBaseline``, ``SobolAudit``, ``FairnessAudit``, the fairness term), naming `hparams.task` (newuser106)."""

from __future__ import annotations

import warnings

import pytest
import torch

from lightning_causal.audits.label_task import label_task
from lightning_causal.audits.task_warnings import warn_softmax_of_regression


def _tiny(kind: str, **config):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=16, num_labels=3, **config)
    return getattr(transformers, f"BertFor{kind}")(cfg).eval()


def _warned(model) -> list[str]:
    logits = torch.tensor([[0.2, 0.5, 0.1]] * 8)  # every entry in [0, 1], rows not summing to 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_softmax_of_regression("X", None, "`probability=False`", model, outputs=logits)
    return [str(w.message) for w in caught]


def test_token_classifier_says_one_class_and_is_not_warned_of_as_probabilities():
    model = _tiny("TokenClassification")
    assert label_task(model) == "multiclass"
    assert _warned(model) == []
    assert label_task(torch.nn.ModuleDict({"model": model})) == "multiclass"  # held by a LightningModule


def test_sequence_classifier_says_the_task_its_first_labels_chose():
    model = _tiny("SequenceClassification")
    assert label_task(model) is None and len(_warned(model)) == 1  # nothing said before a batch with labels
    ids = torch.randint(1, 32, (4, 6))
    model(input_ids=ids, labels=torch.tensor([0, 2, 1, 0]))  # HF chooses cross-entropy and says so in its config
    assert model.config.problem_type == "single_label_classification"
    assert label_task(model) == "multiclass" and _warned(model) == []
    assert label_task(_tiny("SequenceClassification", problem_type="multi_label_classification")) == "multilabel"
    assert label_task(_tiny("SequenceClassification", problem_type="regression")) == "regression"
