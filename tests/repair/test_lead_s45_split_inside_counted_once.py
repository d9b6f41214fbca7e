"""Session 45, re-read A F1 and its test finding: b10a9920 counted the batch-norm calls of every BatchNorm layer of
another class (timm's BatchNormAct2d, SyncBatchNorm, a user's subclass) at every repair step, for ever (a clone and
~5 kernels a call, a read back to the host a step), to warn of a subclass that splits inside its forward; such a
subclass splits from its first step, so each model is counted at its first step only. A one-call subclass is never
warned (the mends' negative case held a plain BatchNorm1d, which is not counted at all). Since leftovers_s46a the count
is of the F.batch_norm calls (paired_rows._BatchNormCalls: a subclass without running statistics counted too), and a
subclass found splitting is paired call by call at every step, not warned."""
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm, paired_rows


class BNAct(nn.BatchNorm1d):  # one batch-norm call a call, then an activation (timm's BatchNormAct)
    def forward(self, x):
        return torch.relu(super().forward(x))


class GhostInside(nn.BatchNorm1d):  # splits inside its own forward
    def forward(self, x):
        return torch.cat([super(GhostInside, self).forward(c) for c in x.chunk(4)])


def _net(norm):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), norm(8), nn.Linear(8, 2)).train()


def _data():
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    x[:, 3] = (x[:, 3] > 0).float()
    return x, torch.randint(0, 2, (40,), generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("norm", [BNAct, GhostInside])
def test_layers_of_other_classes_are_counted_at_the_first_step_only(monkeypatch, norm):
    counted = []
    enter = paired_rows._BatchNormCalls.enter
    monkeypatch.setattr(paired_rows._BatchNormCalls, "enter", lambda self, *a: (counted.append(1), enter(self, *a))[1])
    model, (x, y), term = _net(norm), _data(), CounterfactualFairnessTerm(AttributeFlip(3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        steps = []
        for _ in range(3):
            before = len(counted)
            term.loss(model, x, y)
            steps.append(len(counted) - before)
    if norm is BNAct:
        assert steps[0] > 0 and steps[1:] == [0, 0], steps
    else:  # found at the first step: its calls paired (recorded, replayed) at every step
        assert all(s > 0 for s in steps), steps
    assert not [w for w in caught if "BatchNorm" in str(w.message)], [str(w.message)[:80] for w in caught]
