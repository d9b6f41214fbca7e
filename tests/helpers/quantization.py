"""A small quantization-aware model (``torch.ao.quantization.prepare_qat``) for the tests of fake-quant observers."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn


def qat_mlp(inputs: int, backend: str = "x86", rows: int = 64, qconfig: Any = None) -> nn.Module:
    """``QuantStub, Linear(inputs, 8), ReLU, Linear(8, 3), DeQuantStub`` (seed 0) prepared for QAT with ``qconfig``
    (``None``: ``backend``'s default), after one training forward of ``rows`` rows (seed 1) that sets the observers'
    ranges."""
    import torch.ao.quantization as tq

    torch.manual_seed(0)
    model = nn.Sequential(tq.QuantStub(), nn.Linear(inputs, 8), nn.ReLU(), nn.Linear(8, 3), tq.DeQuantStub()).train()
    model.qconfig = tq.get_default_qat_qconfig(backend) if qconfig is None else qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation of torch.ao.quantization
        tq.prepare_qat(model, inplace=True)
    model(torch.randn(rows, inputs, generator=torch.Generator().manual_seed(1)))
    return model
