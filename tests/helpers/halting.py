"""Adaptive computation in the tests: a block called on every row, then again on the rows not yet halted only (its
later calls return fewer rows than the pass holds), as the halting loops of adaptive-computation models do."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def eye_plus_first(linear: nn.Linear) -> nn.Linear:
    """Set ``linear`` (3 -> 3) to ``h + e0``: feature 0 grows by 1 at each step, the rows' halting clock."""
    with torch.no_grad():
        linear.weight.copy_(torch.eye(3))
        linear.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    return linear


class HaltingLoop(nn.Module):
    """``block`` on every row, then on the rows ``keep_running(h, x)`` keeps, at most ``steps`` calls.

    Each step writes ``squash(block(h[rows]))`` (element 0 where the block returns a tuple, as ``(state, halting
    score)``) back into those rows and applies ``step`` (an ``nn.Identity``) to the whole state: the site where the rows
    are put back together. The loop stops once no row runs, or with ``stop=False`` goes on calling the block on no rows."""

    def __init__(self, keep_running: Callable[[Tensor, Tensor], Tensor], *, steps: int, block: nn.Module | None = None,
                 squash: Callable[[Tensor], Tensor] = torch.tanh, stop: bool = True) -> None:
        super().__init__()
        self.block = nn.Linear(3, 3) if block is None else block
        self.head = nn.Linear(3, 2)
        self.step = nn.Identity()
        self.keep_running, self.steps, self.squash, self.stop = keep_running, steps, squash, stop

    def forward(self, x: Tensor) -> Tensor:
        h = x
        running = torch.ones(x.shape[0], dtype=torch.bool)
        for _ in range(self.steps):
            rows = running.nonzero().flatten()
            if self.stop and rows.numel() == 0:
                break
            out = self.block(h[rows])
            h = self.step(h.index_copy(0, rows, self.squash(out[0] if isinstance(out, tuple) else out)))
            running = running & self.keep_running(h, x)
        return self.head(h)
