"""Rows per pass by device: the cache-friendly 32 MiB working set on CPU, the whole budget elsewhere."""

import torch
from torch import nn

from lightning_causal.causal.engine.batching import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_WORKING_SET,
    preferred_pass_bytes,
    rows_per_pass,
)


def _model(device: str) -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 10)).to(device)


def _bytes_per_row() -> int:
    # float32: input 1024 + Linear 2048 + ReLU 2048 + Linear 10 + the Sequential's own output 10
    return 4 * (1024 + 2048 + 2048 + 10 + 10)


def test_cpu_prefers_the_working_set():
    rows = rows_per_pass(_model("cpu"), (torch.zeros(8, 1024),))
    assert rows == DEFAULT_WORKING_SET // _bytes_per_row()


def test_an_accelerator_fills_the_budget():
    # the meta device stands in for a GPU here: only the device type and the trial's bytes matter
    rows = rows_per_pass(_model("meta"), (torch.zeros(8, 1024, device="meta"),))
    assert rows == DEFAULT_MEMORY_BUDGET // _bytes_per_row()
    assert rows > 8 * rows_per_pass(_model("cpu"), (torch.zeros(8, 1024),))


def test_explicit_sizes_win_over_the_device_default():
    example = (torch.zeros(8, 1024, device="meta"),)
    assert rows_per_pass(_model("meta"), example, working_set_bytes=64 * _bytes_per_row()) == 64
    assert rows_per_pass(_model("meta"), example, max_batch_size=5) == 5
    assert preferred_pass_bytes(torch.device("meta"), budget_bytes=1000) == 1000


def test_cuda_budget_is_a_share_of_free_memory(monkeypatch):
    # torch.device("cuda") needs no GPU; the free memory is what torch.cuda.mem_get_info reports
    from lightning_causal.causal.engine import batching

    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (64 * 2**30, 80 * 2**30))
    assert batching.pass_budget(cuda) == 8 * 2**30  # an eighth of 64 GiB, at the 8 GiB cap
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (16 * 2**30, 80 * 2**30))
    assert batching.pass_budget(cuda) == 2 * 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (23 * 2**30, 80 * 2**30))
    assert batching.pass_budget(cuda) == 2 * 2**30  # 2.875 GiB rounded down to a power of two
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1 * 2**30, 80 * 2**30))
    assert batching.pass_budget(cuda) == DEFAULT_MEMORY_BUDGET  # never below the CPU's budget
    assert batching.pass_budget(torch.device("cpu")) == DEFAULT_MEMORY_BUDGET
    assert batching.pass_budget(torch.device("meta")) == DEFAULT_MEMORY_BUDGET


def test_processes_sharing_rows_keep_one_budget(monkeypatch):
    # two GPUs of a distributed fit have different free memory: the passes (and a noisy model's
    # common-random-number blocks, whose count sets the rows every process gathers) must agree
    from lightning_causal.causal.engine import batching

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (64 * 2**30, 80 * 2**30))
    shard = batching.RowShard(0, 2, lambda t: torch.stack([t, t]))
    with batching.sharded_rows(shard):
        assert batching.pass_budget(torch.device("cuda")) == DEFAULT_MEMORY_BUDGET
    assert batching.pass_budget(torch.device("cuda")) == 8 * 2**30
