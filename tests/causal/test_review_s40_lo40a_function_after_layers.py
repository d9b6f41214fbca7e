"""Review of the change cb07f831: ``label_task`` reads the model's task from the layer its watched pass computed the
output with, and read a torch function after that layer (``sigmoid(...).clamp(eps, 1 - eps)`` for a safe ``BCELoss``,
a ``.float()`` cast of a half or double head, ``torch.cat`` of two sigmoid heads) as no activation at all: a multi-label
model ending in its ``nn.Sigmoid`` that a fresh model's registration order read as ``"multilabel"`` said nothing after
its first audit, and its one-hot float labels were no longer taken as multi-hot. Where a function of torch's computed the
output, the last layer the model called in that pass (layers that move no value aside) is read."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.audits.label_task import label_task, multi_hot_labels


class _Tagger(nn.Module):
    def __init__(self, end: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.end, self.a, self.b, self.sig = end, nn.Linear(4, 2), nn.Linear(4, 1), nn.Sigmoid()
        if end == "cast":
            self.a.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.end == "clamp":
            return self.sig(self.a(x)).clamp(1e-6, 1 - 1e-6)
        if self.end == "cast":
            return self.sig(self.a(x.double())).float()
        return torch.cat([self.sig(self.a(x)), self.sig(self.b(x))], 1)


def _run(model: nn.Module) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        InputEffectAudit().run(model, Probe(torch.randn(6, 4)))  # the judge's pass after the run watches


@pytest.mark.parametrize("end", ["clamp", "cast", "cat"])
def test_a_function_after_the_final_sigmoid_keeps_the_task(end):
    model = _Tagger(end)
    _run(model)
    assert label_task(model) == "multilabel"
    one_hot = torch.eye(2)[torch.tensor([0, 1, 0, 1])] if end != "cat" else torch.eye(3)[torch.tensor([0, 1, 2, 0])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert multi_hot_labels(one_hot, model) is True


def test_a_softmax_in_forward_after_a_linear_is_not_read_by_an_earlier_gate():
    class Gated(nn.Module):  # an nn.Sigmoid gate registered last and called first; the output F.softmax of a Linear
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.gate = nn.Linear(4, 3), nn.Sigmoid()

        def forward(self, x):
            return F.softmax(self.fc(x * self.gate(x)), -1)

    model = Gated()
    assert label_task(model) == "multilabel"  # never watched: registration order
    _run(model)
    assert label_task(model) is None  # the last layer called is the Linear: no activation said


def test_the_guess_warning_does_not_deny_a_registered_sigmoid_the_output_does_not_come_out_of():
    class Gated(nn.Module):  # ends in its Linear head; an auxiliary gate's nn.Sigmoid registered last
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.fc, self.gate = nn.Linear(4, 3), nn.Sigmoid()

        def forward(self, x):
            return self.fc(x * self.gate(x))

    model, labels = Gated().eval(), torch.eye(3)[torch.arange(12) % 3]
    _run(model)  # the watched pass: no activation its output comes out of
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert multi_hot_labels(labels, model) is False
    said = [str(w.message) for w in seen if "hold exactly one 1 per row" in str(w.message)]
    assert said and "no nn.Sigmoid/nn.Softmax its output comes out of" in said[0] and "no last nn.Sigmoid" not in said[0]


def test_an_intervened_output_layer_keeps_the_task():
    # an intervention's hook replaces the final nn.Sigmoid's output after the recorder saw it (FairnessAudit's carrier
    # passes on `layers=` run inside layer_calls): the model's output is no layer's output, the last layer called is it
    from lightning_causal.causal.engine.intervention_hooks import intervene
    from lightning_causal.causal.engine.layer_calls import layer_calls, output_layer
    from lightning_causal.causal.engine.unit_interventions import Scale

    model = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid())
    with layer_calls(), intervene(model, {"1": Scale(0.5)}):
        model(torch.randn(5, 4))
    assert output_layer(model) == ("Sigmoid",) and label_task(model) == "multilabel"
