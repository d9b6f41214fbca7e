"""CausalRepairModule stepped without a Trainer (a Lightning Fabric loop calling ``training_step``, a plain
loop calling ``objective``): its ``current_epoch`` is 0 at every step, so a term whose weight is a schedule
of the epoch (a warm-up, ``lambda e: 0.0 if e < 1 else 5.0``) never reached its later weights and the repair
silently did nothing. ``objective(batch, epoch=...)`` now takes the loop's epoch, and the module warns once
when a scheduled term's weights are read at the trainer-less epoch 0."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 3, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return x, (x[:, 1] + x[:, 0] > 0.5).long()


def _repair(weight) -> CausalRepairModule:
    torch.manual_seed(0)
    return CausalRepairModule(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)),
                              terms=[CounterfactualFairnessTerm(AttributeFlip(0), weight=weight)])


def _by_hand(model: nn.Module, x: torch.Tensor, y: torch.Tensor, weight: float) -> torch.Tensor:
    x_cf = x.clone()
    x_cf[:, 0] = 1 - x_cf[:, 0]
    gap = 0.5 * (model(x).softmax(1) - model(x_cf).softmax(1)).abs().sum(1).mean()
    return F.cross_entropy(model(x), y) + weight * gap


def test_objective_takes_the_loops_epoch():
    x, y = _batch()
    repair = _repair(lambda e: 0.0 if e < 1 else 5.0)
    total0, _ = repair.objective((x, y), epoch=0)
    total1, logs1 = repair.objective((x, y), epoch=1)
    torch.testing.assert_close(total0, _by_hand(repair.model, x, y, 0.0))
    torch.testing.assert_close(total1, _by_hand(repair.model, x, y, 5.0))
    assert "repair/counterfactual_fairness" in logs1
    with pytest.raises(MisconfigurationException, match="`epoch`"):
        repair.objective((x, y), epoch=-1)


def test_a_fabric_loop_is_warned_that_a_weight_schedule_stays_at_epoch_0():
    fabric = pytest.importorskip("lightning.fabric").Fabric(accelerator="cpu", devices=1)
    x, y = _batch()
    repair = _repair(lambda e: 0.0 if e < 1 else 5.0)
    model, optimizer = fabric.setup(repair, repair.configure_optimizers())
    with pytest.warns(UserWarning, match=r"without a Trainer.*\['counterfactual_fairness'\] stays at its epoch-0 weight \(0\)"):
        for _epoch in range(2):  # the epochs a Fabric loop counts: the module cannot see them
            loss = model.training_step((x, y), 0)
            optimizer.zero_grad()
            fabric.backward(loss)
            optimizer.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per module; a constant weight needs no epoch
        model.training_step((x, y), 0)
        _repair(5.0).objective((x, y))
