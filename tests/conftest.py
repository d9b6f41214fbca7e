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


@pytest.fixture(autouse=True)
def _restore_deterministic_algorithms():
    """``Trainer(deterministic=True)`` leaves ``torch.use_deterministic_algorithms`` on: reset it
    after each test so that no test depends on which ran before it."""
    enabled, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
