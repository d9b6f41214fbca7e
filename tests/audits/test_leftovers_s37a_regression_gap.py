"""A regression's counterfactual fairness gap in output units. `counterfactual_fairness_gap` compared the sigmoid of a
regressor's one output in silence (a linear regressor at 10 whose attribute moves its output by 2.5: gap 7e-5), and
FairnessAudit had no gap of a regression's output (only a warning). `compare="output"` compares the raw output,
E|f_t(x_cf) - f_t(x)|: on a linear regressor gap = |w_a| * |a - a'|; the audit's regression warning names it, and the
core function says what it compared."""

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap

W_A = 2.5  # the attribute's weight


def _regressor(outputs: int = 1) -> nn.Linear:
    model = nn.Linear(3, outputs)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[W_A, -1.0, 0.5], [0.0, 1.0, 1.0]][:outputs]))
        model.bias.fill_(10.0)
    return model


def _x(values=(0.0, 1.0)) -> torch.Tensor:
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    x[:, 0] = torch.where(x[:, 0] > 0, values[1], values[0])
    return x


@pytest.mark.parametrize("values", [(0.0, 1.0), (-1.0, 2.0)])
def test_the_output_gap_of_a_linear_regressor_is_its_weight_times_the_change(values):
    x = _x(values)
    g = counterfactual_fairness_gap(_regressor(), x, AttributeFlip(0, values=values), compare="output")
    change = abs(values[1] - values[0])
    assert g["mean_abs"] == pytest.approx(W_A * change, rel=1e-6)
    assert g["max_abs"] == pytest.approx(W_A * change, rel=1e-6)
    up = (x[:, 0] == values[0]).double().mean().item()  # rows moved from values[0] to values[1] gain W_A * change
    assert g["mean"] == pytest.approx(W_A * change * (2 * up - 1), rel=1e-5)
    assert math.isnan(g["flip_rate"]) and g["compared"] == "the model's output, in its own units"


def test_the_probability_gap_says_it_compares_a_sigmoid():
    g = counterfactual_fairness_gap(_regressor(), _x(), AttributeFlip(0))
    assert g["mean_abs"] < 1e-3 and "sigmoid of the model's one output" in g["compared"]


def test_output_gap_needs_a_column_of_several_outputs_and_a_known_compare():
    with pytest.raises(ValueError, match=r"Expected argument `target` to name the output column compared"):
        counterfactual_fairness_gap(_regressor(2), _x(), AttributeFlip(0), compare="output")
    g = counterfactual_fairness_gap(_regressor(2), _x(), AttributeFlip(0), compare="output", target=0)
    assert g["mean_abs"] == pytest.approx(W_A)
    with pytest.raises(ValueError, match=r"Expected argument `compare` to be one of \('probability', 'output'\)"):
        counterfactual_fairness_gap(_regressor(), _x(), AttributeFlip(0), compare="raw")


def _run(audit, model, probe):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = audit.run(model, probe)
    return result, [str(w.message) for w in seen]


def test_the_audit_gives_a_regression_its_output_gap():
    model, x = _regressor(), _x()
    y = model(x).squeeze(1).detach() + 0.1
    result, said = _run(FairnessAudit(AttributeFlip(0), compare="output"), model, Probe(x, y))
    assert result.scalars["cf_gap"] == pytest.approx(W_A, rel=1e-6)
    assert result.scalars["cf_gap_max"] == pytest.approx(W_A, rel=1e-6)
    assert "cf_flip_rate" not in result.scalars
    assert result.meta["compared"] == "the model's output, in its own units"
    assert any("compare='output'" in note for note in result.meta["notes"])
    assert not [m for m in said if "FairnessAudit" in m]


def test_a_model_that_says_it_regresses_is_told_of_compare_output_and_gets_its_gap_with_it():
    model, x = _regressor(), _x()
    model.loss = nn.MSELoss()
    result, said = _run(FairnessAudit(AttributeFlip(0), compare="probability"), model, Probe(x))
    assert result.scalars["cf_gap"] < 1e-3 and any("pass compare='output'" in m for m in said)
    result, said = _run(FairnessAudit(AttributeFlip(0), compare="output"), model, Probe(x))
    assert result.scalars["cf_gap"] == pytest.approx(W_A, rel=1e-6) and not [m for m in said if "FairnessAudit" in m]


def test_probability_on_a_regression_is_warned_about_and_output_refuses_carriers():
    model, x = _regressor(), _x()
    y = model(x).squeeze(1).detach() + 0.1
    result, said = _run(FairnessAudit(AttributeFlip(0), compare="probability"), model, Probe(x, y))
    assert result.scalars["cf_gap"] < 1e-3 and "cf_flip_rate" in result.scalars
    assert any("pass compare='output'" in m for m in said)
    with pytest.raises(ValueError, match=r"Expected argument `layers` to be empty with compare='output'"):
        FairnessAudit(AttributeFlip(0), layers=["0"], compare="output")
    with pytest.raises(ValueError, match=r"Expected argument `compare`"):
        FairnessAudit(AttributeFlip(0), compare="raw")


def test_a_classifier_keeps_its_probability_gap():
    clf = nn.Linear(3, 2)
    x = _x()
    result, _ = _run(FairnessAudit(AttributeFlip(0)), clf, Probe(x, torch.arange(40) % 2))
    assert "cf_flip_rate" in result.scalars and result.meta["compared"] == "the softmax probability of the target class"
