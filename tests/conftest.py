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


#: torch's deterministic-algorithms setting when the session started (off by default)
_DETERMINISTIC_AT_START = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())


@pytest.fixture(autouse=True)
def _restore_deterministic_algorithms():
    """``Trainer(deterministic=True)`` leaves ``torch.use_deterministic_algorithms`` on: reset it
    after each test to the session's starting setting, so that no test depends on which ran before
    it. (Restoring the setting found at the test's start kept it on for the rest of a worker after a
    module-scoped fixture had trained with ``deterministic=True``: a later statically quantized model
    then failed on ``quantized_resize_cpu_``, which has no deterministic implementation.)"""
    yield
    torch.use_deterministic_algorithms(_DETERMINISTIC_AT_START[0], warn_only=_DETERMINISTIC_AT_START[1])
