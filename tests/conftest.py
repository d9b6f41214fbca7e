"""Shared fixtures: the devices to run device-agnostic tests on (CUDA when available; CI has none)."""

import os

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
#: the directory pytest runs from (a clone's root in CI), fixed when the suite starts: a test that moves the working
#: directory without restoring it does not move the check
_START_DIR = os.getcwd()


def _written_in_start_dir() -> dict[str, int]:
    """Each of :data:`_WRITTEN_IN_CWD` present in :data:`_START_DIR` with the latest modification time of the folder
    and its entries (a new entry, such as ``causal_audit/epoch_0001.json`` or ``lightning_logs/version_3``, or a file
    in it written again changes it)."""
    paths = {name: os.path.join(_START_DIR, name) for name in _WRITTEN_IN_CWD}
    return {name: max([os.stat(path).st_mtime_ns] + [entry.stat().st_mtime_ns for entry in os.scandir(path)])
            for name, path in paths.items() if os.path.isdir(path)}


@pytest.fixture(autouse=True)
def _nothing_written_in_the_working_directory():
    """A test writes under ``tmp_path``: a callback without ``report_dir``, a Trainer without ``default_root_dir`` or
    ``logger=False`` write ``causal_audit/``, ``lightning_logs/`` into the directory pytest runs from (a clone's root
    in CI). Fails the test after which one of them appeared or received a new entry (under pytest-xdist another
    worker's test may have written it at the same time: the message says so)."""
    before = _written_in_start_dir()
    yield
    after = _written_in_start_dir()
    made = [name for name, stamp in after.items() if before.get(name) != stamp]
    if made:
        raise AssertionError(f"{made} appeared or changed in the directory pytest runs from {_START_DIR!r} during this "
                             "test (or a test run beside it by another pytest-xdist worker): give the Trainer "
                             "default_root_dir=tmp_path or logger=False, and CausalAuditCallback report_dir=tmp_path")
