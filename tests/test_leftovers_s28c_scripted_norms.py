"""Leftovers of session 28 (item 2): a scripted subclass of a BatchNorm (``class MyBN(nn.BatchNorm1d)`` under
``torch.jit.script``, ``original_name`` ``"MyBN"``) was not recognised as a normalisation layer: a repair read no batch
statistics in use in training mode and fused the task's rows with the counterfactuals (mixing their statistics), and
the audits' check of sample independence did not name it. A scripted look-alike named ``BatchNorm1d`` without
``track_running_stats`` raised ``AttributeError`` in both. ``is_norm_layer`` now reads a scripted module's flag and, for
a class of the user's, the norm its forward runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.kept_attributes import is_norm_layer
from lightning_causal.repair.objective import batch_statistics_in_use

X = torch.tensor([[1.0, 2.0, -1.0], [-1.0, 0.5, 2.0], [0.5, -1.0, 1.0], [2.0, 1.0, 0.5]])


class MyBN(nn.BatchNorm1d):
    pass


class MyIN(nn.InstanceNorm1d):
    pass


class BatchNorm1d(nn.Module):
    """A look-alike: named like torch's class, a per-sample scale, no ``track_running_stats``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))

    def forward(self, x):
        return x * self.w


class Centre(nn.Module):
    """Subtracts the batch's mean: outputs that depend on the batch."""

    def forward(self, x):
        return x - x.mean(0, keepdim=True)


def test_a_scripted_batchnorm_subclass_is_a_batchnorm_and_its_statistics_are_in_use_in_training():
    model = torch.jit.script(nn.Sequential(nn.Linear(3, 3), MyBN(3)))
    bn = dict(model.named_modules())["1"]
    assert bn.original_name == "MyBN"
    assert is_norm_layer(bn) and is_norm_layer(bn, _BatchNorm)
    assert batch_statistics_in_use(model.train())  # before: False, the repair fused the joint batch
    assert not batch_statistics_in_use(model.eval())
    instance = dict(torch.jit.script(nn.Sequential(MyIN(3, track_running_stats=True))).named_modules())["0"]
    assert is_norm_layer(instance) and not is_norm_layer(instance, _BatchNorm)


def test_a_scripted_look_alike_is_no_norm_and_reading_it_never_raises():
    model = torch.jit.script(nn.Sequential(BatchNorm1d(), nn.Linear(3, 1)))
    assert not is_norm_layer(dict(model.named_modules())["0"])
    assert not batch_statistics_in_use(model.train())  # before: AttributeError track_running_stats
    with pytest.raises(ValueError, match=r"depends on the batch"):  # before: AttributeError
        input_effects(nn.Sequential(model, Centre()).eval(), X)


def test_the_independence_check_names_a_scripted_subclass_without_running_statistics():
    model = nn.Sequential(nn.Linear(3, 3), torch.jit.script(MyBN(3, track_running_stats=False))).eval()
    with pytest.raises(ValueError, match=r"normalisation layer\(s\) \['1'\] have track_running_stats=False"):
        input_effects(model, X)
