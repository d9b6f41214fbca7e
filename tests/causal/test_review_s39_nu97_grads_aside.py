"""Review of fd76c373 (an optimizer stepped inside forward put back and refused): every outermost ``audit_mode`` block,
so every estimator called directly, cloned the ``.grad`` of every parameter to put their values back should a backward
inside forward accumulate into them. After a Lightning fit the parameters hold the last step's gradients, so each direct
call paid a model's worth of memory and a copy (26 ms of a 147 ms ``input_effects`` on a 13.4M-parameter MLP, one
thread). The ``.grad`` tensors are now set aside for the block and put back after (a backward inside writes new ones),
copied nowhere; the global step hook is removed after an exception and after nested blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import _global_optimizer_pre_hooks
from torch.utils._python_dispatch import TorchDispatchMode

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.state import audit_mode


class _Clones(TorchDispatchMode):
    """The shapes of the tensors cloned inside."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.clone.default:
            self.shapes.append(tuple(args[0].shape))
        return func(*args, **(kwargs or {}))


def _fitted() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 37), nn.Tanh(), nn.Linear(37, 3))
    x, y = torch.randn(16, 6), torch.arange(16) % 3
    F.cross_entropy(model(x), y).backward()  # the last step's gradients, left on as after a fit
    return model


def test_a_direct_call_copies_no_grad_and_leaves_it_as_found():
    model = _fitted()
    grads = [p.grad for p in model.parameters()]
    values = [g.clone() for g in grads]
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
    with _Clones() as clones:
        input_effects(model, x, torch.arange(6).expand(8, 6).clone(), 0.0)
    assert (37, 6) not in clones.shapes and (3, 37) not in clones.shapes  # no copy of the weights' .grad
    assert all(p.grad is g for p, g in zip(model.parameters(), grads))
    assert all(torch.equal(g, v) for g, v in zip(grads, values))


class _BackwardInForward(nn.Module):
    """A forward that differentiates a loss of its own under enable_grad (no optimizer): its backward accumulates into
    whatever .grad the parameters hold."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            self.net(x).pow(2).mean().backward()
        return self.net(x)


def test_a_backward_inside_writes_no_found_grad_nested_too():
    model = _BackwardInForward(_fitted())
    grads = [p.grad for p in model.parameters()]
    values, versions = [g.clone() for g in grads], [g._version for g in grads]
    with audit_mode(model):
        with audit_mode(model):
            model(torch.ones(2, 6))
        model(torch.ones(2, 6))
    assert all(p.grad is g for p, g in zip(model.parameters(), grads))
    assert [g._version for g in grads] == versions  # never written into (no accumulation undone by a copy)
    assert all(torch.equal(g, v) for g, v in zip(grads, values))


def test_the_global_step_hook_is_removed_on_exceptions_and_nested_blocks():
    model = _fitted()
    grads = [p.grad for p in model.parameters()]
    with pytest.raises(KeyError):
        with audit_mode(model):
            with audit_mode(model):
                assert len(_global_optimizer_pre_hooks) == 1  # one hook for the outermost block
                raise KeyError("mid-way")
    assert not _global_optimizer_pre_hooks
    assert all(p.grad is g for p, g in zip(model.parameters(), grads))


def test_the_pages_frozen_tent_recipe_runs_on_a_float64_net():
    import re
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "your_model.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "def frozen_adapted" in b)
    ns: dict = {}
    exec(compile(block, "<docs/your_model.md>", "exec"), ns)  # noqa: S102 - the page's own recipe
    torch.manual_seed(0)  # TENT's always-batch-statistics BatchNorm, in float64 (the recipe's statistics were float32)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8, track_running_stats=False), nn.ReLU(), nn.Linear(8, 2))
    net = net.double()
    x = torch.randn(64, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    frozen = ns["frozen_adapted"](net, [x])
    with torch.no_grad():  # the test batch's own statistics, to the n/(n-1) of the running variance
        torch.testing.assert_close(frozen(x), net(x), rtol=0, atol=0.05)
    assert frozen[1].running_mean.dtype == torch.float64
