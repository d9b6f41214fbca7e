"""CausalRepairModule refused real-valued (regression) labels for its default ``F.cross_entropy`` only (f30c59f1):
the same loss passed as ``nn.CrossEntropyLoss()`` or ``functools.partial(F.cross_entropy, label_smoothing=0.1)``
trained towards a forecast's targets taken for class probabilities, without a word. Every cross-entropy is checked now;
losses of other kinds are not."""

from __future__ import annotations

import functools

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F

from lightning_causal.repair.module_arguments import check_task_labels

TARGETS = torch.tensor([[0.3, -1.2, 2.5], [2.5, 0.1, -0.7]])  # a forecast's [N, H]


@pytest.mark.parametrize(("loss", "named"), [(nn.CrossEntropyLoss(), r"nn.CrossEntropyLoss\(\)"),
                                             (functools.partial(F.cross_entropy, label_smoothing=0.1),
                                              "a partial of F.cross_entropy"),
                                             (F.cross_entropy, r"F.cross_entropy \(the default\)")])
def test_every_cross_entropy_refuses_regression_targets(loss, named):
    with pytest.raises(MisconfigurationException, match=rf"`task_loss`, {named}, but got a regression target \(\[2, 3\]"):
        check_task_labels(loss, TARGETS)


@pytest.mark.parametrize("loss", [nn.CrossEntropyLoss(), functools.partial(F.cross_entropy, label_smoothing=0.1)])
def test_class_labels_pass_every_cross_entropy(loss):
    check_task_labels(loss, torch.tensor([2, 0, 1]))
    check_task_labels(loss, torch.softmax(torch.randn(2, 3, generator=torch.Generator().manual_seed(0)), 1))


@pytest.mark.parametrize("loss", [nn.MSELoss(), F.mse_loss, functools.partial(F.huber_loss, delta=0.5)])
def test_other_losses_are_not_checked(loss):
    check_task_labels(loss, TARGETS)


def test_soft_labels_with_rows_of_zeros_pass():
    """A soft-label row of zeros adds nothing to cross-entropy (a sample left out on purpose): the batch is soft labels,
    not a regression's targets (review_s32d found it refused)."""
    soft = torch.tensor([[0.2, 0.8, 0.0], [0.0, 0.0, 0.0], [0.5, 0.25, 0.25]])
    check_task_labels(F.cross_entropy, soft)
    assert F.cross_entropy(torch.randn(3, 3), soft).isfinite()
    check_task_labels(F.cross_entropy, soft.T.reshape(1, 3, 3))  # [N, C, T] with a step of zeros
    with pytest.raises(MisconfigurationException, match="regression target"):  # zeros beside a regression's targets
        check_task_labels(F.cross_entropy, torch.tensor([[0.3, -1.2], [0.0, 0.0]]))
