"""A row function that runs out of memory above a row count: the out-of-memory retry's tests fake the device with it."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lightning_causal._compat import OutOfMemoryError


def failing_above(limit: int, error: type[Exception] = OutOfMemoryError) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[int]]:
    """``(fn, calls)``: ``fn(idx)`` raises ``error`` (an out-of-memory message) for more than ``limit`` rows, else gives
    ``idx * 10`` in float64; ``calls`` records the rows of every call."""
    calls: list[int] = []

    def fn(idx: torch.Tensor) -> torch.Tensor:
        calls.append(idx.numel())
        if idx.numel() > limit:
            raise error("CUDA out of memory. Tried to allocate 2.00 GiB")
        return idx.double() * 10

    return fn, calls
