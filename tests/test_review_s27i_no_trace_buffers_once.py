"""fabb4ee3 made the callback's ``no_trace`` put back number attributes (a call counter) with
``keep_attributes(values=True)``, which also copies every buffer's values: ``no_trace`` copies them already, so each
audit held two copies of every buffer (a GPT-2-style causal mask per layer, a MoCo queue) and took twice the time to
enter. ``keep_attributes(numbers=True)`` notes the numbers alone."""

from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal.engine.kept_attributes import keep_attributes


class _Counted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.register_buffer("mask", torch.ones(37, 3))  # a shape no parameter has
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.mask.mul_(2.0)
        return self.fc(x) * self.mask[0]


class _Clones(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.of_mask = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.clone and tuple(args[0].shape) == (37, 3):
            self.of_mask += 1
        return func(*args, **(kwargs or {}))


def test_no_trace_copies_each_buffer_once_and_puts_back_numbers_and_buffers() -> None:
    m = _Counted()
    with _Clones() as clones, no_trace(m):
        pass
    assert clones.of_mask == 1  # before: 2 (no_trace's copy and keep_attributes(values=True)'s)
    with no_trace(m):
        m(torch.ones(2, 3))
        assert m.calls == 1 and float(m.mask[0, 0]) == 2.0
    assert m.calls == 0 and torch.equal(m.mask, torch.ones(37, 3))


def test_keep_attributes_numbers_puts_back_numbers_without_copying_buffers() -> None:
    m = _Counted()
    kept = keep_attributes(m, numbers=True)
    assert kept.values is None
    m(torch.ones(2, 3))
    kept.restore()
    assert m.calls == 0 and float(m.mask[0, 0]) == 2.0  # the number put back; the buffer is the caller's to restore
