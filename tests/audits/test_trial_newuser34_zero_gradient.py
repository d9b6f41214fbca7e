"""CaptumBaseline on a model whose gradient is 0 at every input (torch.round of its activations, no
straight-through gradient): the gradient methods give 0 everywhere. The comparison said "undefined (NaN) metrics
... constant explanations or curves" and warned that the agreement "is low", which it is not (NaN); the note on
the TensorBoard card now names the cause (the model's gradient is 0) and what explains such a model, whole
(under the card's 160 characters), and FeatureAblation's row agrees with the causal one exactly."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits.base import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline
from lightning_causal.reporting.summary import markdown_summary

X = torch.randn(12, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


class Rounded(nn.Module):
    """Activations rounded to integers: piecewise constant in the input, its gradient 0 wherever defined."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = nn.Linear(5, 8).double(), nn.Linear(8, 3).double()

    def forward(self, x):
        return self.l2(torch.round(3 * torch.relu(self.l1(x))))


def _run():
    audit = CaptumBaseline(("Saliency", "FeatureAblation"), target=0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = audit.run(Rounded().eval(), Probe(X))
    return result, [str(w.message) for w in seen]


def test_the_note_names_a_zero_gradient_and_fits_on_the_card():
    result, seen = _run()
    assert torch.equal(result.maps["Saliency"], torch.zeros_like(X))  # what the gradient is
    assert bool(result.maps["causal"].ne(0).any())  # while interventions move the output
    note = result.meta["notes"][0]
    assert note.startswith("['Saliency'] give 0 everywhere (a gradient of 0") and "FeatureAblation" in note
    assert not any("undefined (NaN) metrics for ['Saliency']" in n for n in result.meta["notes"])
    assert len(note) <= 160  # the card cuts a note there
    assert note in markdown_summary(0, [result])
    assert any("Saliency gives exactly 0 in every probe sample to every group" in m and "ranks nothing" in m for m in seen)
    assert not any("is low for that reason" in m for m in seen)


def test_feature_ablation_agrees_exactly_and_the_saliency_row_is_undefined():
    result, _ = _run()
    rows = {row["method"]: row for row in result.tables["comparison"]}
    assert rows["FeatureAblation"]["spearman"] == pytest.approx(1.0)
    assert math.isnan(rows["Saliency"]["spearman"]) and math.isnan(rows["Saliency"]["stability"])


def test_a_layer_whose_gradient_after_it_is_zero_is_noted_with_that_cause():
    """The note said the layer "does not depend on the explained input (it reads forward arguments only)": the
    cause of a multimodal model, not of this one, whose layer l1 reads the input."""
    audit = CaptumBaseline(("FeatureAblation",), target=0, layers=["l1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = audit.run(Rounded().eval(), Probe(X))
    (note,) = [n for n in result.meta["notes"] if "'l1'" in n]
    assert "the model's gradient after the layer is 0 at every sample" in note and "does not depend" not in note
    assert math.isnan(result.scalars["compare/LayerConductance-l1/spearman"])


class StraightThrough(nn.Module):
    """A hard step whose gradient is a sigmoid's (a straight-through estimator kept in eval mode)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = nn.Linear(5, 8).double(), nn.Linear(8, 3).double()

    def forward(self, x):
        h = self.l1(x)
        soft = torch.sigmoid(h)
        return self.l2((h > 0).to(h.dtype) + soft - soft.detach())


def test_a_straight_through_estimator_is_said_to_give_the_gradient_methods_a_surrogate():
    audit = CaptumBaseline(("Saliency", "FeatureAblation"), target=0)
    with pytest.warns(UserWarning, match=r"misses part of how the output depends on it.*the maps of Saliency"):
        result = audit.run(StraightThrough().eval(), Probe(X))
    note = [n for n in result.meta["notes"] if "surrogate" in n]
    assert note == ["['Saliency'] follow a gradient that misses how the output moves (a straight-through estimator, "
                    ".detach()): they explain a surrogate"]
    assert len(note[0]) <= 160
    with warnings.catch_warnings(record=True) as seen:  # the same model without the step: no such note
        warnings.simplefilter("always")
        plain = audit.run(nn.Sequential(StraightThrough().l1, nn.Sigmoid(), StraightThrough().l2).eval(), Probe(X))
    assert not [w for w in seen if "misses part" in str(w.message)] and "notes" not in plain.meta


class Chatty(nn.Module):
    """A smooth model whose forward warns on every call (a deprecation notice in user code)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = nn.Linear(5, 8).double(), nn.Linear(8, 3).double()

    def forward(self, x):
        warnings.warn("feature x3 is deprecated", DeprecationWarning, stacklevel=2)
        return self.l2(torch.tanh(self.l1(x)))


def test_the_models_own_warnings_are_not_read_as_a_surrogate_gradient():
    """The surrogate check recorded every warning raised during its passes and noted each as a surrogate gradient,
    re-raised under the audit's name: a smooth model that warns in forward got six such notes on its card."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = CaptumBaseline(("Saliency",), target=0).run(Chatty().eval(), Probe(X))
    assert "notes" not in result.meta
    assert not any("CaptumBaseline" in str(w.message) for w in seen)
    assert any(w.category is DeprecationWarning and str(w.message) == "feature x3 is deprecated" for w in seen)
