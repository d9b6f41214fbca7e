"""A scripted model (``torch.jit.script``) with BatchNorm was not seen as normalising by the batch's statistics
(``repair/objective.batch_statistics_in_use`` and ``kept_attributes._trained_statistics`` asked ``isinstance`` of a
class that a scripted module does not keep), so CausalRepairModule ran the fused pass from its second step, where an
eager BatchNorm model runs the task's pass alone: the task loss was that of ``x`` normalised with the statistics of
``x`` and its counterfactuals, and the term's pass at the first step was put back out of the running statistics
(``num_batches_tracked`` 2 after two steps, 4 for the eager model). Scripted BatchNorm is read as eager BatchNorm now
(``kept_attributes.is_norm_layer``, by the module's ``original_name``), also by the estimators' check that samples are
independent (``engine/sample_independence``), which named an eager BatchNorm without running statistics only."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm
from lightning_causal.repair.objective import batch_statistics_in_use


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randint(0, 2, (16, 1), generator=g).float(), torch.randn(16, 2, generator=g)], 1)
    return x, torch.randint(0, 2, (16,), generator=g)


def _three_steps(model: nn.Module) -> tuple[list[list[float]], nn.Module]:
    """The task loss and the term of three objective steps on one batch (no optimizer step: the weights stay)."""
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0))])
    repair.train()
    steps = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no trainer: the epoch is 0
        for i in range(3):
            _, logs = repair.objective(_batch(), i, epoch=0)
            steps.append([float(logs["repair/task_loss"]), float(logs["repair/counterfactual_fairness"])])
    return steps, model[1] if not isinstance(model, torch.jit.ScriptModule) else model._modules["1"]


def test_a_scripted_batchnorm_model_is_repaired_as_the_eager_one() -> None:
    eager, eager_bn = _three_steps(_net())
    scripted, scripted_bn = _three_steps(torch.jit.script(_net()))
    x, y = _batch()
    with torch.no_grad():  # the task loss of x alone, normalised by x's own statistics, at every step
        task = nn.functional.cross_entropy(_net().train()(x), y)
    assert [s[0] for s in eager] == [float(task)] * 3
    assert scripted == eager
    assert int(scripted_bn.num_batches_tracked) == int(eager_bn.num_batches_tracked) == 6  # task and term pass, each step
    torch.testing.assert_close(scripted_bn.running_mean, eager_bn.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(scripted_bn.running_var, eager_bn.running_var, rtol=0, atol=0)


def test_batch_statistics_are_in_use_in_a_scripted_batchnorm_as_in_an_eager_one() -> None:
    for model in (_net(), torch.jit.script(_net())):
        assert batch_statistics_in_use(model.train())
        assert not batch_statistics_in_use(model.eval())
    no_stats = torch.jit.script(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False)))
    assert batch_statistics_in_use(no_stats.eval())  # no running statistics: the batch's, also in eval mode
    per_sample = torch.jit.script(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.InstanceNorm1d(1)))
    assert not batch_statistics_in_use(per_sample.train())


def test_a_scripted_batchnorm_without_running_statistics_is_named_as_the_eager_one() -> None:
    """The estimators' check that samples are independent named an eager BatchNorm with track_running_stats=False as
    the cause, and gave a scripted one's model the generic cause (control flow on a batch statistic)."""
    from lightning_causal.causal import input_effects

    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    for scripted in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2)).eval()
        with pytest.raises(ValueError, match=r"normalisation layer\(s\) \['1'\] have track_running_stats=False"):
            input_effects(torch.jit.script(model) if scripted else model, x)
