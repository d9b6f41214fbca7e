"""Shared fixtures: the devices to run device-agnostic tests on (CUDA when available; CI has none)."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_worker():
    """pytest-xdist runs one worker per core: one torch thread each avoids oversubscription."""
    torch.set_num_threads(1)
