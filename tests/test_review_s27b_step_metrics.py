"""Review of fcaf118b (LightningClassifier's test_step): the classifier and CausalRepairModule log their step metrics
by one rule (lightning_causal.step_metrics): the loss, and the accuracy of class logits [N, C >= 2] against class
indices only."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.models import LightningClassifier
from lightning_causal.repair import CausalRepairModule
from lightning_causal.step_metrics import step_metrics


class _Fixed(nn.Module):
    """Returns the logits stored for each row index (the input's first column)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x):
        return self.logits[x[:, 0].long()]


def _tested(module: pl.LightningModule, y: torch.Tensor) -> dict[str, float]:
    x = torch.arange(len(y)).float()[:, None]
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers
        return trainer.test(module, DataLoader(TensorDataset(x, y), batch_size=len(y)), verbose=False)[0]


def test_step_metrics_by_hand():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0], [3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    out = step_metrics("test", torch.tensor(0.25), logits, torch.tensor([0, 1, 0, 1]))
    assert out == {"test_loss": torch.tensor(0.25), "test_acc": torch.tensor(0.75)}  # row 1's argmax is 2, not 1
    assert list(step_metrics("test", torch.tensor(0.25), logits, torch.softmax(logits, 1))) == ["test_loss"]
    assert list(step_metrics("test", torch.tensor(0.25), logits[:, :1], torch.zeros(4, dtype=torch.long))) == ["test_loss"]


def test_the_classifier_and_the_repair_module_log_the_same_test_metrics():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0], [3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    cases = [(logits, torch.tensor([0, 1, 0, 1])),  # class indices: loss and accuracy 0.75
             (logits, torch.softmax(2 * logits, 1))]  # soft labels: the loss only
    for out, y in cases:
        expected = {k: float(v) for k, v in
                    step_metrics("test", nn.functional.cross_entropy(out, y), out, y).items()}
        classifier = _tested(LightningClassifier(_Fixed(out)), y)
        repair = _tested(CausalRepairModule(_Fixed(out), []), y)
        assert set(classifier) == set(repair) == set(expected), (classifier, repair)
        for name, value in expected.items():
            assert abs(classifier[name] - value) < 1e-6 and abs(repair[name] - value) < 1e-6
    # one logit column, labels 0: the repair module logs the loss only (an argmax over one column is no accuracy); the
    # classifier, whose cross-entropy cannot train such a head, refuses it (below). Before: it logged test_acc = 1.0
    out, y = logits[:, :1], torch.zeros(4, dtype=torch.long)
    assert set(_tested(CausalRepairModule(_Fixed(out), []), y)) == {"test_loss"}
    with pytest.raises(MisconfigurationException, match=r"logits of shape \[4, 1\] at a test step"):
        _tested(LightningClassifier(_Fixed(out)), y)


def test_the_classifier_refuses_a_one_logit_head_that_its_cross_entropy_cannot_train():
    # before: labels [N, 1] of 0./1. trained at loss 0 whatever the head predicted (a softmax over one logit is 1), and
    # the weights did not move; class indices 1 failed in torch with 'IndexError: Target 1 is out of bounds.'
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    y = (x[:, :1] > 0).float()
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers
        for labels in (y, y[:, 0].long()):
            model = LightningClassifier(nn.Linear(3, 1))
            with pytest.raises(MisconfigurationException, match=r"logits of shape \[8, 1\] at a train step.*out_features=2"):
                trainer.fit(model, DataLoader(TensorDataset(x, labels), batch_size=8))
    assert float(nn.functional.cross_entropy(torch.randn(4, 1), torch.ones(4, 1))) == 0.0  # why: the loss is 0
