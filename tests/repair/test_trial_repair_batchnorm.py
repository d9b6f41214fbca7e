"""Trial (repair): the default fused forward pass must not change the task loss of a model with
BatchNorm (the counterfactual rows would join the batch statistics)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


def test_a_batchnorm_model_gets_its_own_task_loss_and_gradients_with_the_default_fuse_forward():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    x[:, 0] = (torch.rand(64, generator=g) < 0.2).float()  # a rare group: the joint batch's statistics differ most
    y = (x[:, 1] > 0).long()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)).train()
    reference = copy.deepcopy(net)
    term = CounterfactualFairnessTerm(AttributeFlip(0))
    total, logs = CausalRepairModule(net, [term]).objective((x, y))  # fuse_forward=True, the default
    task = F.cross_entropy(reference(x), y)
    torch.testing.assert_close(logs["repair/task_loss"], task.detach())
    expected = task + 5.0 * term.loss(reference, x, y)
    torch.testing.assert_close(total, expected)
    total.backward()
    expected.backward()
    for a, b in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad)
    net.eval()  # running statistics: rows are independent, the joint pass is the same objective
    assert not CausalRepairModule(net, [term])._batch_statistics_in_use()
