"""review_s30h: a number attribute a forward pass updates was put back by the audits (``self.calls += 1``, the numbers'
rule) only where it held a Python ``int`` or ``float``: one held as a numpy scalar (``self.avg = np.mean(...)``, an
``np.float64``; ``self.steps = np.int64(0)`` then ``self.steps += 1``) kept the value of the audit's last pass, so
training went on from the audit's batch. Numpy scalars now follow the numbers' rule."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.causal.engine.state import audit_mode


class MeanTracker(nn.Module):
    """A linear map that keeps, as numpy scalars, the mean of the last batch it saw and how many passes it ran."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.avg = np.float64(0.0)
        self.steps = np.int64(0)
        self.seen = np.bool_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.avg = np.mean(x.detach().numpy())
        self.steps += 1
        self.seen = np.bool_(True)
        return self.lin(x)


def test_numpy_scalars_are_put_back_with_numbers() -> None:
    m = nn.Linear(2, 2)
    m.avg, m.steps, m.flag, m.name = np.float64(0.5), np.int64(2), np.bool_(False), np.str_("full")
    kept = keep_attributes(m, numbers=True)
    m.avg, m.steps, m.flag, m.name = np.mean(np.array([1.0, 2.0])), m.steps + 1, np.bool_(True), np.str_("part")
    kept.restore()
    assert (m.avg, m.steps, bool(m.flag), m.name) == (0.5, 2, False, "full")  # before: (1.5, 3, True, 'part')
    assert type(m.avg) is np.float64 and type(m.steps) is np.int64  # the very values, their types kept


def test_numpy_scalar_set_to_a_python_number_and_back() -> None:
    m = nn.Linear(2, 2)
    m.avg, m.calls = np.float32(0.25), 4
    kept = keep_attributes(m, numbers=True)
    m.avg, m.calls = 3.0, np.int64(7)
    kept.restore()
    assert (m.avg, m.calls) == (0.25, 4) and type(m.avg) is np.float32 and type(m.calls) is int


def test_audit_mode_and_audit_model_leave_the_numpy_scalars_as_found() -> None:
    torch.manual_seed(0)
    model = MeanTracker()
    model(torch.ones(4, 3))  # avg 1.0, steps 1
    with audit_mode(model):
        model(torch.zeros(4, 3))
    assert (model.avg, model.steps, bool(model.seen)) == (1.0, 1, True)  # before: (0.0, 2, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [InputEffectAudit(ace_values=None)], torch.full((8, 3), 3.0))
    assert (model.avg, model.steps) == (1.0, 1)  # before: (3.0, and the audit's passes counted)
