"""newuser63's trial: a forecaster of 24 horizons (labels [N, 24], real values) fine-tuned by CausalRepairModule with the
default task loss, F.cross_entropy, which took the forecasts for class scores and the targets for class probabilities
without an error and trained towards them (validation MSE 0.3 before, 2,569 after three epochs). The first batch of such
labels is now refused naming `task_loss=`; class labels, and a regression's own loss, train as before."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm


def _x() -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    x[:, 2] = torch.tensor([0.0, 1.0] * 4)  # column 2: the binary attribute the term flips
    return x


def _loss(module: CausalRepairModule, y: torch.Tensor) -> torch.Tensor:
    return module.objective((_x(), y), 0)[0]


def test_the_default_cross_entropy_refuses_a_forecasts_targets() -> None:
    module = CausalRepairModule(nn.Linear(3, 4), [CounterfactualFairnessTerm(AttributeFlip(2), distance="logit")])
    with pytest.raises(MisconfigurationException, match=r"regression target \(\[8, 4\] float32 such as .*`task_loss=F.mse_loss`"):
        _loss(module, torch.randn(8, 4) * 2)


def test_class_labels_and_a_regression_loss_train_as_before() -> None:
    torch.manual_seed(1)
    net = nn.Linear(3, 4)
    term = [CounterfactualFairnessTerm(AttributeFlip(2), distance="logit", weight=0.0)]
    y = torch.tensor([0, 3, 1, 2, 0, 1, 2, 3])
    assert torch.allclose(_loss(CausalRepairModule(net, term), y), F.cross_entropy(net(_x()), y))
    soft = torch.softmax(torch.randn(8, 4), 1)  # class probabilities: still cross-entropy's soft targets
    assert torch.allclose(_loss(CausalRepairModule(net, term), soft), F.cross_entropy(net(_x()), soft))
    target = torch.randn(8, 4) * 2
    assert torch.allclose(_loss(CausalRepairModule(net, term, task_loss=F.mse_loss), target), F.mse_loss(net(_x()), target))


def test_a_fit_stops_at_its_first_step(tmp_path) -> None:
    data = torch.utils.data.TensorDataset(_x(), torch.randn(8, 4) * 2)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    module = CausalRepairModule(nn.Linear(3, 4), [CounterfactualFairnessTerm(AttributeFlip(2), distance="logit")])
    before = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(MisconfigurationException, match="F.cross_entropy"):
        trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4))
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))  # nothing trained
