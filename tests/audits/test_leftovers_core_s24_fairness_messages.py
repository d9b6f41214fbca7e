"""FairnessAudit and the fairness functions on a one-output (sigmoid) model: a refused ``target`` was described from
the probabilities' two columns ("the model has 2 classes: two outputs, or one output whose sigmoid ...") where the
model's own output says it has one; and the recording of a carrier layer that runs twice a pass warned "capture keeps
its last call's output", which the recording (every call kept, then the carrier's own passes) does not do."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import (
    AttributeFlip,
    Intersections,
    carrier_unit_effects,
    counterfactual_fairness_gap,
)
from lightning_causal.causal.scm import fairness
from lightning_causal.causal.scm.intersections import world_gaps

ONE_OUTPUT = r"to be in \[0, 1\] but got \[2\] \(the model has one output: the classes 0 and 1 of its sigmoid\)"


def _data(outputs: int = 1):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 3, generator=g)
    x[:, 0] = torch.tensor([0.0, 1.0] * 8)
    x[:, 1] = torch.tensor([0.0, 0.0, 1.0, 1.0] * 4)
    torch.manual_seed(0)
    return x, torch.tensor([0, 1] * 8), nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, outputs))


@pytest.mark.parametrize("call", ["audit", "audit_carriers", "gap", "worlds"])
def test_a_refused_target_of_a_one_output_model_says_it_has_one_output(call):
    x, y, model = _data()
    flip = AttributeFlip(0)
    with pytest.raises(ValueError, match=ONE_OUTPUT):
        if call.startswith("audit"):
            FairnessAudit(flip, target=2, layers=["1"] if call == "audit_carriers" else ()).run(model, Probe(x, y))
        elif call == "gap":
            counterfactual_fairness_gap(model, x, flip, target=2)
        else:
            world_gaps(model, x, Intersections(flip, {"sex": 0, "race": 1}), target=2)


def test_the_carriers_from_recorded_passes_say_what_the_model_returns():
    """The recorded path (the audit's own passes: ``p`` has the sigmoid's two columns) refuses as the unrecorded does."""
    x, _, model = _data()
    flip = AttributeFlip(0)
    with pytest.raises(ValueError, match=ONE_OUTPUT):
        carrier_unit_effects(model, x, flip, "1", target=2)
    record: dict = {"1": None}
    p, _, _, classes = fairness._counterfactual_probabilities(model, x, [flip], record=record)
    with pytest.raises(ValueError, match=ONE_OUTPUT):
        fairness._carrier_effects(model, x, flip, "1", target=2, recorded=(p, *record["1"], classes))


def test_two_outputs_are_said_to_be_two_outputs():
    """The message reads the model's output, not the probabilities' two columns: a two-output model is not told it may
    be one output's sigmoid (before: 'the model has 2 classes: two outputs, or one output whose sigmoid ...')."""
    x, y, model = _data(outputs=2)
    flip = AttributeFlip(0)
    for run in (lambda: FairnessAudit(flip, target=2, layers=["1"]).run(model, Probe(x, y)),
                lambda: counterfactual_fairness_gap(model, x, flip, target=2),
                lambda: carrier_unit_effects(model, x, flip, "1", target=2)):
        with pytest.raises(ValueError, match=r"but got \[2\] \(the model returns 2 outputs\)$"):
            run()


class _SharedEncoder(nn.Module):
    """``enc`` runs twice a pass: the recording keeps both calls and leaves the carrier to its own passes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.enc, self.head = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.enc(self.enc(torch.relu(self.a(x)))))


def _repeat_warnings(run) -> int:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run()
    return sum("runs more than once per forward pass" in str(w.message) for w in seen)


def test_the_recording_does_not_warn_that_it_keeps_the_last_call():
    """Since newuser108 the carriers of a layer run twice a pass are refused (``repeated_carrier_error``: the last
    call's counterfactual value set at both calls), with no warning of the last call kept before the refusal."""
    x, y, _ = _data()
    model, flip = _SharedEncoder(), AttributeFlip(0)

    def refused(run):
        def checked():
            with pytest.raises(ValueError, match="'enc' to run once per forward pass for its carrier units, but it runs 2"):
                run()
        return checked

    assert _repeat_warnings(refused(lambda: carrier_unit_effects(model, x, flip, "enc"))) == 0
    assert _repeat_warnings(refused(lambda: FairnessAudit(flip, layers=["enc"]).run(model, Probe(x, y)))) == 0  # was 3
