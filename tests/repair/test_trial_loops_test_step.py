"""``trainer.test(repair, test_loader)`` after a repair (the loops trial): ``CausalRepairModule`` had a
``validation_step`` and a ``predict_step`` but no ``test_step``, so Lightning stopped with "No `test_step()`
method defined to run `Trainer.test`". It now logs ``test_loss`` and ``test_acc`` as ``validation_step`` logs
``val_loss`` and ``val_acc``: here equal to the cross-entropy and accuracy of a hand-weighted linear model."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm


def test_trainer_test_logs_test_loss_and_accuracy():
    linear = nn.Linear(3, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5]]))
        linear.bias.zero_()
    x = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.5, 0.0, 0.0],
                      [0.0, 0.0, 1.0], [1.0, 2.0, 0.0], [3.0, 1.0, 1.0], [0.0, 2.0, 0.0]])
    y = torch.tensor([0, 1, 0, 0, 1, 1, 0, 1])
    repair = CausalRepairModule(linear, [CounterfactualFairnessTerm(AttributeFlip(2), sensitive=2)])
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.test(repair, DataLoader(TensorDataset(x, y), batch_size=4), verbose=False)
    logits = x @ linear.weight.detach().T
    assert metrics["test_loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)
    assert metrics["test_acc"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))  # 6 of 8
    assert metrics["test_acc"] == pytest.approx(6 / 8)
