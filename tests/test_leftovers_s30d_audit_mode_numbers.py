"""leftovers_s30d: ``audit_mode`` (every estimator's block: ``input_effects``, ``unit_effects``, an audit's ``run``) put
back the tensors a model keeps as attributes but not its numbers, while the callback's ``no_trace`` (and so
``audit_model``) put back both: a call counter in ``forward`` (``self.calls += 1``, a Gumbel-softmax temperature annealed
by it) was advanced by every pass of an estimator called directly (10 by ``input_effects`` of 3 columns). ``audit_mode``
now keeps them as ``no_trace`` does (``keep_attributes(numbers=True)``)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.engine.state import audit_mode


class Counted(nn.Module):
    """Counts its forward calls and anneals a scale with them, as plain number attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)
        self.calls, self.scale = 0, 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.scale *= 0.5
        return self.b(torch.tanh(self.a(x)))


def test_audit_mode_puts_back_the_numbers_the_forward_changes() -> None:
    model = Counted()
    with audit_mode(model):
        model(torch.randn(2, 3))
        assert model.calls == 1 and model.scale == 0.5
    assert model.calls == 0 and type(model.calls) is int and model.scale == 1.0  # before: 1 and 0.5


def test_estimators_and_audits_leave_a_call_counter_as_found() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 3)
    model = Counted()
    input_effects(model, x, target=1)
    unit_effects(model, x, "a", target=1)
    InputEffectAudit(ace_values=None).run(model, Probe(x))
    assert (model.calls, model.scale) == (0, 1.0)  # before: advanced by every pass the three ran
    model(x)  # the model's own calls count as before
    assert (model.calls, model.scale) == (1, 0.5)
