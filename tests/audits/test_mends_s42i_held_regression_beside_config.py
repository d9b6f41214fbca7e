"""A held regression loss beside a Hugging Face classifier head's config (final read E, F1 and F2 on b9a869ec, which
read ``None`` there without a word): the ``task_loss`` a ``CausalRepairModule`` states decides (its own
``nn.MSELoss``, held as its submodule, says ``"regression"`` of the repair module as of the network, so a default
``FairnessAudit`` of the repair module no longer compares a softmax of regression outputs); where nothing states the
task, ``label_task`` still says ``None`` but warns once a model, naming both readings and ``hparams.task``."""

from __future__ import annotations

import types
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.audits.label_task import label_task
from lightning_causal.causal import AttributeFlip, TokenSwap
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm

transformers = pytest.importorskip("transformers")


class _Net(nn.Module):  # a 3-class checkpoint's classifier, fine-tuned as a 3-score regressor
    def __init__(self) -> None:
        super().__init__()
        cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=16, max_position_embeddings=16, num_labels=3,
                                      problem_type="single_label_classification")
        self.bert = transformers.BertForSequenceClassification(cfg)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=ids).logits


class TabForSequenceClassification(nn.Module):  # a classifier head's config reused by a regressor
    def __init__(self) -> None:
        super().__init__()
        self.config = types.SimpleNamespace(num_labels=3, problem_type="single_label_classification")
        self.f = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)


class _Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head, self.loss = TabForSequenceClassification(), nn.MSELoss()  # the task loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x) * 10 + 50


def test_the_repair_modules_stated_mse_says_regression_of_the_module_as_of_the_network():
    torch.manual_seed(0)
    net = _Net()
    module = CausalRepairModule(net, [CounterfactualFairnessTerm(TokenSwap([(7, 9)]))], task_loss=nn.MSELoss())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stated: nothing to warn
        assert label_task(net) == "regression"
        assert label_task(module) == "regression"
    ids = torch.randint(10, 50, (16, 8))
    ids[:8, 2], ids[8:, 2] = 7, 9
    module.eval()
    with pytest.raises(ValueError, match="compare='output'"):  # raw outputs compared, as of the network
        FairnessAudit(TokenSwap([(7, 9)])).run(module, Probe(ids))


def test_a_held_regression_loss_beside_a_classifier_config_warns_once_naming_hparams_task():
    model = _Regressor()
    with pytest.warns(UserWarning, match="nn.MSELoss.*TabForSequenceClassification.*'single_label_classification'") as w:
        assert label_task(model) is None
    message = str(w[0].message)
    assert "hparams.task='regression'" in message and "hparams.task='multiclass'" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once a model
        assert label_task(model) is None
        model.hparams = {"task": "regression"}  # the way out: said, unwarned
        assert label_task(model) == "regression"
    with pytest.warns(UserWarning, match="the two readings of its task disagree"):  # the audits read the task
        FairnessAudit(AttributeFlip(0)).run(_Regressor().eval(), Probe(torch.randint(0, 2, (16, 4)).float()))
