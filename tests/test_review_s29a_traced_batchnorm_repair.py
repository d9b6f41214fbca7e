"""Review of 3238026f (a BatchNorm traced in training mode): the estimators refuse such a model now, but
``CausalRepairModule`` still fused its task pass with the terms' rows: ``batch_statistics_in_use`` knew eager and
scripted BatchNorm layers only, while the traced graph normalises by the batch in either mode, so the joint pass of
``x`` and its counterfactuals mixed their statistics into the task loss and the fit trained otherwise than the unfused
one (max |dw| 3.7e-3 after two epochs, the running statistics 0.09 apart). Such a model now runs unfused, as an eager
BatchNorm in training mode does; one traced in eval mode (running statistics in its graph) still fuses."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.causal.engine.kept_attributes import traced_batch_norm_in_training
from lightning_causal.repair.objective import batch_statistics_in_use
from tests.repair.test_stateful_fused_s26 import F, _fit


def _traced(train: bool) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(F, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).train(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(net, torch.randn(8, F))


def test_a_batchnorm_traced_in_training_mode_uses_the_batchs_statistics_in_either_mode() -> None:
    in_train, in_eval = _traced(True), _traced(False)
    assert batch_statistics_in_use(in_train.train()) and batch_statistics_in_use(in_train.eval())  # before: False
    assert not batch_statistics_in_use(in_eval.train()) and not batch_statistics_in_use(in_eval.eval())
    assert traced_batch_norm_in_training(getattr(in_train, "1")) and not traced_batch_norm_in_training(in_train)
    assert not traced_batch_norm_in_training(getattr(in_eval, "1"))
    # the graph's own answer: a batch of one row and its twin in a batch of two disagree in eval mode too
    x = torch.randn(4, F)
    assert not torch.allclose(in_train.eval()(x[:2])[0], in_train.eval()(x)[0])


def test_a_model_traced_in_training_mode_runs_unfused_and_trains_as_the_unfused_fit() -> None:
    fused, unfused = _traced(True), _traced(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fit(fused, True)
        _fit(unfused, False)
    for (name, a), b in zip(fused.state_dict().items(), unfused.state_dict().values()):
        assert torch.equal(a, b), name  # before: max |dw| 3.7e-3, running_var 0.09 apart
