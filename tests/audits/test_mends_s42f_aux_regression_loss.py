"""A held regression loss beside a Hugging Face classifier head's config disagrees with it: ``label_task`` says
``None``, as before ecefbdbe, where it read ``"regression"`` (final read C, F3: an auxiliary ``nn.MSELoss`` of a
distillation or consistency term beside a ``single_label_classification`` checkpoint made a default ``FairnessAudit``
compare raw outputs and fail, naming no held loss). A held classification loss still outranks the config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.audits.label_task import label_task
from lightning_causal.causal import TokenSwap

transformers = pytest.importorskip("transformers")


def _classifier(problem_type: str = "single_label_classification") -> nn.Module:
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=16, max_position_embeddings=16, num_labels=3,
                                  problem_type=problem_type)
    return transformers.BertForSequenceClassification(cfg).eval()


class _Held(nn.Module):
    def __init__(self, loss: nn.Module, problem_type: str = "single_label_classification") -> None:
        super().__init__()
        self.bert, self.aux = _classifier(problem_type), loss

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=ids).logits


def test_a_held_regression_loss_beside_a_classifier_config_says_nothing():
    torch.manual_seed(0)
    assert label_task(_Held(nn.MSELoss())) is None
    assert label_task(_Held(nn.L1Loss())) is None
    assert label_task(_Held(nn.MSELoss(), "multi_label_classification")) is None
    assert label_task(_Held(nn.MSELoss(), "regression")) == "regression"  # the two agree
    assert label_task(_Held(nn.BCEWithLogitsLoss())) == "multilabel"  # a classification loss outranks the config
    assert label_task(_Held(nn.CrossEntropyLoss(), "multi_label_classification")) == "multiclass"


def test_a_default_fairness_audit_runs_on_the_classifier_with_an_auxiliary_mse():
    torch.manual_seed(0)
    model = _Held(nn.MSELoss()).eval()
    ids = torch.randint(10, 50, (16, 8))
    ids[:8, 2], ids[8:, 2] = 7, 9
    result = FairnessAudit(TokenSwap([(7, 9)])).run(model, Probe(ids, torch.randint(0, 3, (16,))))
    assert result.meta.get("compare") == "probability"
    assert torch.isfinite(torch.tensor(result.scalars["cf_gap"]))
