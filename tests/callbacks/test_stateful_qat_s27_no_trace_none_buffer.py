"""no_trace (the context the callback's audits run in) kept only the buffers that held a tensor: a buffer registered as
``None`` and filled by a forward pass inside (a state the model creates lazily, ``self.register_buffer("h", None)``) was
left holding the audit's tensor, of the probe's rows, which the next training step then read."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.callbacks._no_trace import no_trace


class _Lazy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("h", None)  # filled by the first forward pass
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.h = x.detach().mean(0)
        self.count += 1
        return self.lin(x)


def test_a_buffer_registered_as_none_and_filled_inside_is_none_again_after() -> None:
    m = _Lazy()
    count = m.count
    with no_trace(m):
        m(torch.ones(4, 3))
        assert torch.equal(m.h, torch.ones(3))
    assert m.h is None and "h" in m._buffers  # before: tensor([1., 1., 1.])
    assert m.count is count and float(count) == 0.0


def test_a_buffer_filled_before_the_audit_gets_its_tensor_and_values_back() -> None:
    m = _Lazy()
    m(torch.zeros(2, 3))
    h = m.h
    with no_trace(m):
        m(torch.ones(4, 3))
    assert m.h is h and torch.equal(h, torch.zeros(3)) and float(m.count) == 1.0
