"""Hand-weighted models of several outputs for the fairness tests, and what those tests share: the flip of
the binary sensitive column 0 and the warnings a call raises."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def multi_label_linear() -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """``z_k = 2 x_0 + x_1 - x_2 + c_k`` for 3 labels (``c = (-1, 0, 1)``), float64: flipping the binary
    sensitive column 0 moves every label's logit by ±2. Returns the model, 16 inputs (column 0 alternating
    0/1) and their multi-hot labels ``z > 0``."""
    model = nn.Linear(4, 3).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, 1.0, -1.0, 0.0]] * 3, dtype=torch.float64))
        model.bias.copy_(torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64))
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[:, 0] = (torch.arange(16) % 2).double()
    return model, x, (model(x) > 0).double().detach()


def flip_first_column(rows: torch.Tensor) -> torch.Tensor:
    """A copy of ``rows`` with the binary column 0 flipped (``1 - x_0``)."""
    rows = rows.clone()
    rows[:, 0] = 1 - rows[:, 0]
    return rows


def warnings_said(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``fn()`` and the messages of every warning it raised (each shown, however often)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        value = fn()
    return value, [str(w.message) for w in record]
