"""A quantization-aware model whose observers are off (``model.apply(torch.ao.quantization.disable_observer)``, as QAT
recipes do after a few epochs) quantizes every row with the scales it holds, so a joint pass of the task's rows and a
term's counterfactuals gives the task loss of the task's rows alone; CausalRepairModule ran it unfused all the same
(1.8 times the step time on a 75-module QAT MLP), as any fake-quant module counted. Its flag is read now, from the
device only when it was written since (``state.observer_on``)."""

from __future__ import annotations

import copy

import torch
import torch.ao.quantization as tq
from torch import nn

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.engine.state import observer_on
from lightning_causal.repair.objective import batch_statistics_in_use
from tests.helpers.quantization import qat_mlp


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return x, (x[:, 1] > 0).long()


def _repair(net: nn.Module, fuse: bool) -> CausalRepairModule:
    return CausalRepairModule(net, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)], fuse_forward=fuse)


def test_a_qat_model_with_its_observers_off_runs_fused_and_gets_the_unfused_loss() -> None:
    net = qat_mlp(4)
    net(torch.randn(32, 4, generator=torch.Generator().manual_seed(1)))  # ranges of its own
    net.apply(tq.disable_observer)
    other = copy.deepcopy(net)
    rows: list[int] = []
    net.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    fused, unfused = _repair(net, True), _repair(other, False)
    x, y = _batch()
    for _ in range(3):
        a, b = fused.objective((x, y), epoch=0)[1], unfused.objective((x, y), epoch=0)[1]
        torch.testing.assert_close(a["repair/task_loss"], b["repair/task_loss"], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(a["repair/total"], b["repair/total"], rtol=1e-6, atol=1e-7)
    assert rows == [8, 16, 16, 16]  # the reading step unfused, then joint passes (before: [8, 16] each step)
    for k, v in net.state_dict().items():  # the scales as they were: nothing observed
        assert torch.equal(v, other.state_dict()[k]), k


def test_switching_the_observers_on_again_runs_unfused_at_the_next_step() -> None:
    net = qat_mlp(4)
    net.apply(tq.disable_observer)
    assert not batch_statistics_in_use(net)
    fq = next(m for m in net.modules() if isinstance(m, tq.FakeQuantizeBase))
    fq.enable_observer()  # one module: its flag's write is seen
    assert observer_on(fq) and batch_statistics_in_use(net)
    fq.disable_observer()
    assert not observer_on(fq) and not batch_statistics_in_use(net)
    net.load_state_dict({**net.state_dict(), **{k: torch.ones(1, dtype=torch.uint8) for k in net.state_dict()
                                                 if k.endswith("observer_enabled")}})
    assert batch_statistics_in_use(net)  # a checkpoint's flags, loaded in place
