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
