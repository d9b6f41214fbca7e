"""leftovers_s30e: the audits put back the tensors, numbers, lists and tuples a model's forward sets as attributes, but
not a string, a bool or ``None`` (``self.mode = "part" if x.shape[0] < 16 else "full"``, ``self.full = True``): the
audit left the value its last pass set. A model that starts its carried state afresh where the mode changes then
started it afresh at the step after each audit, and a fit with ``CausalAuditCallback`` trained otherwise than the same
fit without it. They are now put back under the numbers' rule (``keep_attributes(numbers=True)``, ``values=True``)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from tests.helpers.lightning import SgdMlp, fits_with_and_without_audits


class ModeMlp(SgdMlp):
    """:class:`SgdMlp` that carries the mean of its training inputs across batches (added to its input), started afresh
    where the batch's mode (``"full"``: 16 rows, else ``"part"``) is not the last one seen; ``full`` and ``last`` (the
    mode before, ``None`` at first) are set by every pass."""

    def __init__(self) -> None:
        super().__init__()
        self.mode: str | None = None
        self.last: str | None = None
        self.full = False
        self.carried = torch.zeros(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = "full" if x.shape[0] == 16 else "part"
        carried = self.carried if mode == self.mode else torch.zeros(5)
        self.last, self.mode, self.full = self.mode, mode, x.shape[0] == 16
        if not self.training:
            return self.net(x)
        self.carried = (0.5 * carried + 0.5 * x.mean(0)).detach()
        return self.net(x + self.carried)


def test_strings_bools_and_none_are_put_back_with_numbers() -> None:
    m = nn.Linear(2, 2)
    m.mode, m.flag, m.last, m.calls = "full", False, None, 0
    kept, plain = keep_attributes(m, numbers=True), keep_attributes(m)
    m.mode, m.flag, m.last, m.calls = "part", True, "full", 3
    plain.restore()
    assert (m.mode, m.flag, m.last, m.calls) == ("part", True, "full", 3)  # without numbers: left, as before
    kept.restore()
    assert (m.mode, m.flag, m.last, m.calls) == ("full", False, None, 0)  # before: ('part', True, 'full', 0)
    assert m.training and type(m.flag) is bool


def test_audit_model_and_an_estimator_leave_the_mode_as_it_was() -> None:
    torch.manual_seed(0)
    model = ModeMlp().train()
    model(torch.randn(16, 5))
    model(torch.randn(16, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [InputEffectAudit(ace_values=None)], torch.randn(8, 5))
    assert (model.mode, model.last, model.full) == ("full", "full", True)  # before: ('part', 'part', False)
    input_effects(model, torch.randn(8, 5), target=0)
    assert (model.mode, model.last, model.full) == ("full", "full", True)  # before: ('part', 'part', False)
    assert model.training


def test_a_fit_with_the_callback_trains_as_the_fit_without_it() -> None:
    audited, plain = fits_with_and_without_audits(ModeMlp)  # before: its weights differ (the carried mean started
    assert (audited.mode, audited.last, audited.full) == (plain.mode, plain.last, plain.full)  # afresh after each audit)
    assert torch.equal(audited.carried, plain.carried)
