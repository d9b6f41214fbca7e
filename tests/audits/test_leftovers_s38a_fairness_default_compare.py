"""FairnessAudit's default ``compare`` (``None``) compares a regression's outputs: a model it reads as a regression
(labels that are a regression target, or a model that says it regresses) had its cf_gap taken of the sigmoid of its
output, 7e-5 for a linear regressor whose attribute moves its output by 2.5, with a warning naming ``compare="output"``.
Now the run compares the outputs (gap = |w_a| * |a - a'|) and says so in ``meta["compare"]``, a note and the text card
(which shows ``meta["compared"]``, what cf_gap is the change of); an explicit ``compare="probability"`` is kept, with
the warning; a classifier's gap is unchanged; carrier ``layers`` (measured on probabilities) keep probabilities."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip
from lightning_causal.reporting.summary import markdown_summary
from tests.audits.test_leftovers_s37a_regression_gap import W_A, _regressor, _x

OUTPUT = "the model's output, in its own units"


def _run(audit, model, probe):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = audit.run(model, probe)
    return result, [str(w.message) for w in seen if "FairnessAudit" in str(w.message)]


@pytest.mark.parametrize("values", [(0.0, 1.0), (-1.0, 2.0)])
def test_the_default_compares_a_regressors_outputs(values):
    model, x = _regressor(), _x(values)
    y = model(x).squeeze(1).detach() + 0.1  # a regression target
    result, said = _run(FairnessAudit(AttributeFlip(0, values=values)), model, Probe(x, y))
    gap = W_A * abs(values[1] - values[0])  # the flip moves the output by |w_a| * |a - a'| on every row
    assert result.scalars["cf_gap"] == pytest.approx(gap, rel=1e-6) and result.scalars["cf_gap_max"] == pytest.approx(gap, rel=1e-6)
    assert "cf_flip_rate" not in result.scalars and not said
    assert result.meta["compare"] == "output" and result.meta["compared"] == OUTPUT
    assert any(n.startswith("compare='output' chosen (`compare` left at its default)") for n in result.meta["notes"])
    card = markdown_summary(0, [result])
    assert f"compared: {OUTPUT}" in card and "compare='output' chosen" in card


def test_a_model_that_says_it_regresses_gets_its_output_gap_by_default():
    model, x = _regressor(), _x()
    model.loss = nn.MSELoss()
    result, said = _run(FairnessAudit(AttributeFlip(0)), model, Probe(x))  # no labels: the model's word
    assert result.scalars["cf_gap"] == pytest.approx(W_A, rel=1e-6) and result.meta["compare"] == "output" and not said


def test_an_explicit_probability_is_kept_with_the_warning():
    model, x = _regressor(), _x()
    y = model(x).squeeze(1).detach() + 0.1
    result, said = _run(FairnessAudit(AttributeFlip(0), compare="probability"), model, Probe(x, y))
    assert result.scalars["cf_gap"] < 1e-3 and "cf_flip_rate" in result.scalars and result.meta["compare"] == "probability"
    assert any("pass compare='output'" in m for m in said)
    assert "compared: the sigmoid of the model's one output" in markdown_summary(0, [result])


def test_carrier_layers_keep_probabilities_with_the_warning():
    model, x = nn.Sequential(_regressor()), _x()
    y = model(x).squeeze(1).detach() + 0.1
    result, said = _run(FairnessAudit(AttributeFlip(0), layers=["0"]), model, Probe(x, y))
    assert result.meta["compare"] == "probability" and any("pass compare='output'" in m for m in said)


def test_a_classifier_is_unchanged():
    torch.manual_seed(0)
    clf, x = nn.Linear(3, 2), _x()
    probe = Probe(x, torch.arange(40) % 2)
    default, said = _run(FairnessAudit(AttributeFlip(0)), clf, probe)
    explicit, _ = _run(FairnessAudit(AttributeFlip(0), compare="probability"), clf, probe)
    assert default.scalars == explicit.scalars and "cf_flip_rate" in default.scalars and not said
    assert default.meta["compare"] == "probability" and default.meta["compared"] == "the softmax probability of the target class"
    p = clf(x).softmax(1).detach()  # by hand: E|p_t(x_cf) - p_t(x)|, t the class predicted on x
    x_cf = x.clone()
    x_cf[:, 0] = 1 - x_cf[:, 0]
    t = p.argmax(1, keepdim=True)
    hand = (clf(x_cf).softmax(1).detach().gather(1, t) - p.gather(1, t)).abs().mean()
    assert default.scalars["cf_gap"] == pytest.approx(float(hand), rel=1e-5)
