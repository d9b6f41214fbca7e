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


#: what the callback, a Trainer or a SummaryWriter write into the working directory when a test gives them no folder
_WRITTEN_IN_CWD = ("causal_audit", "lightning_logs", "runs", "checkpoints")


@pytest.fixture(autouse=True)
def _nothing_written_in_the_working_directory():
    """A test writes under ``tmp_path``: a callback without ``report_dir``, a Trainer without ``default_root_dir`` or
    ``logger=False`` write ``causal_audit/``, ``lightning_logs/`` into the directory pytest runs from (a clone's root
    in CI). Fails the test after which one of them appeared (under pytest-xdist another worker's test may have made it
    at the same time: the message says so)."""
    import os

    before = {name for name in _WRITTEN_IN_CWD if os.path.exists(name)}
    yield
    made = [name for name in _WRITTEN_IN_CWD if name not in before and os.path.exists(name)]
    if made:
        raise AssertionError(f"{made} appeared in the working directory {os.getcwd()!r} during this test (or a test "
                             "run beside it by another pytest-xdist worker): give the Trainer default_root_dir=tmp_path "
                             "or logger=False, and CausalAuditCallback report_dir=tmp_path")
