"""``label_task`` reads a Hugging Face config's ``problem_type`` on the head that computes its loss by it (a
``...ForSequenceClassification``), not on every module sharing that config: a backbone (``BertModel``) loaded from a
fine-tuned classifier's checkpoint carries ``problem_type="single_label_classification"`` beside the user's own
head, and a ``...ForTokenClassification`` takes cross-entropy whatever its config says (review of newuser106's
f0ad44ba: a sigmoid multi-label head on such a backbone was read as one class per sample, in silence, and a held
``nn.MSELoss`` no longer said regression)."""

from __future__ import annotations

import pytest
from torch import nn

from lightning_causal.audits.label_task import label_task

transformers = pytest.importorskip("transformers")


def _config(**kw):
    return transformers.BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=16, **kw)


class _OwnHead(nn.Module):
    """A backbone whose saved config says single-label classification, under the user's own head."""

    def __init__(self, head: nn.Module, loss: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = transformers.BertModel(_config(problem_type="single_label_classification"))
        self.head = head
        if loss is not None:
            self.loss = loss

    def forward(self, ids):
        return self.head(self.backbone(input_ids=ids).last_hidden_state[:, 0])


def test_a_backbones_problem_type_does_not_say_the_task_of_the_users_head():
    assert label_task(_OwnHead(nn.Sequential(nn.Linear(16, 3), nn.Sigmoid()))) == "multilabel"
    assert label_task(_OwnHead(nn.Linear(16, 3), nn.MSELoss())) == "regression"
    assert label_task(_OwnHead(nn.Linear(16, 3))) is None


def test_heads_read_as_their_loss_is_chosen():
    token = transformers.BertForTokenClassification(_config(num_labels=3, problem_type="multi_label_classification"))
    assert label_task(token) == "multiclass"  # its loss is cross-entropy whatever the config says
    sequence = transformers.BertForSequenceClassification(_config(num_labels=3, problem_type="regression"))
    assert label_task(nn.ModuleDict({"model": sequence})) == "regression"
