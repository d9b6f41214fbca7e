"""Review of 7f01b0c6 (session 39): ``memory_rows_written`` looked for the rows a task's pass writes along the first
dimension only, so MoCo's own queue, ``[dim, K]`` written along its second dimension (``queue[:, ptr:ptr + n] = k.T``),
was not told: every one of its ``dim`` rows changes at each step, as a running mean's entries do. The terms' passes
kept filling it (fused: the counterfactual rows beside the task's; unfused: the batch a second time), the case the
commit mends for a ``[K, dim]`` bank. The slices written are now counted along each dimension."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.repair import CounterfactualFairnessTerm
from lightning_causal.repair.carried_state import memory_rows_written

D, C, K, N, STEPS = 6, 2, 40, 16, 5


class _MoCoQueue(nn.Module):
    """A classifier reading a queue of past inputs laid out as MoCo's (``[dim, K]``, ``queue_ptr`` of shape ``[1]``),
    written in its training-mode forward."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(D, C)
        self.register_buffer("queue", torch.zeros(D, K))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x) + 0.1 * (x @ self.queue).mean(1, keepdim=True)
        if self.training:
            with torch.no_grad():
                cols = (self.queue_ptr + torch.arange(x.shape[0])) % K
                self.queue[:, cols] = x.T
                self.queue_ptr.copy_((self.queue_ptr + x.shape[0]) % K)
        return out


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS * N, D, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()  # the flipped binary column
    return x, torch.randint(0, C, (STEPS * N,), generator=g)


@pytest.mark.parametrize("fuse", [True, False])
def test_a_queue_written_along_its_second_dimension_holds_the_training_rows_once(fuse: bool) -> None:
    x, y = _data()
    torch.manual_seed(0)
    model = _MoCoQueue()
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)], fuse_forward=fuse)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(STEPS):
        opt.zero_grad()
        total, _ = repair.objective((x[step * N:(step + 1) * N], y[step * N:(step + 1) * N]), step, epoch=0)
        total.backward()
        opt.step()
    assert int(model.queue_ptr) == STEPS * N % K  # each training row written once
    order = (torch.arange(K) + STEPS * N) % K  # the slot of each of the last K training rows, FIFO
    assert torch.equal(model.queue[:, order], x[STEPS * N - K:].T)


def test_the_slices_written_are_counted_along_each_dimension_and_a_running_mean_is_none() -> None:
    m = nn.Module()
    m.register_buffer("queue", torch.zeros(D, K))
    m.register_buffer("mean", torch.zeros(D, 3))
    m.register_buffer("count", torch.zeros(1))
    kept = keep_attributes(m, reassigned_buffers=True, values=True)
    m.queue[:, 5:5 + N] = 1.0
    m.mean.mul_(0.9).add_(0.1)  # every entry moves: a running statistic, not a memory
    m.count += 1
    assert memory_rows_written(kept, m) == (("queue", (D, K)),)


class _SparseCounts(nn.Module):
    """Counts of co-occurring features in a sparse buffer, added to in its training-mode forward."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(D, C)
        self.register_buffer("cooc", torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (D, D)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.cooc.add_((x.T @ x).to_sparse())
        return self.head(x)


def test_a_sparse_buffer_written_in_the_forward_is_no_error_at_the_step_that_reads_the_state() -> None:
    x, y = _data()
    model = _SparseCounts()
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)])
    total, _ = repair.objective((x[:N], y[:N]), 0, epoch=0)  # NotImplementedError: 'aten::ne.Tensor' ... 'SparseCPU'
    total.backward()
    assert repair._carried == () and model.cooc._nnz() > 0
