"""FairnessAudit's default ``compare=None`` (443ea5d7) compares a regression's outputs where the run reads one: float
labels -1/+1 of a binary classifier trained with a hinge or margin loss (beyond [0, 1], so read as a regression target)
made the default compare the raw margins, with no cf_flip_rate and only a note, where the explicit default before
warned. Labels of two values are no regression target to choose by in silence: the probabilities are compared and the
run warns naming ``compare="output"``; a real regression target (many values) and a model that says it regresses
still get the outputs compared."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip


def _run(model, x, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = FairnessAudit(AttributeFlip(0)).run(model, Probe(x, y))
    return result, [str(w.message) for w in caught if "compare='output'" in str(w.message)]


@pytest.fixture()
def margin():
    torch.manual_seed(0)
    x = torch.randn(80, 4)
    x[:, 0] = (torch.arange(80) % 2).float()
    model = nn.Linear(4, 1)
    return model, x, torch.where(model(x).squeeze(1) > 0, 1.0, -1.0).detach()


def test_minus_one_plus_one_labels_keep_the_probabilities_with_the_warning(margin):
    model, x, y = margin
    result, said = _run(model, x, y)
    assert result.meta["compare"] == "probability" and "cf_flip_rate" in result.scalars and len(said) == 1
    p = torch.sigmoid(model(x)).detach().squeeze(1)  # by hand: |sigmoid(m(x_cf)) - sigmoid(m(x))| of the class predicted
    x_cf = x.clone()
    x_cf[:, 0] = 1 - x_cf[:, 0]
    p_cf = torch.sigmoid(model(x_cf)).detach().squeeze(1)
    assert result.scalars["cf_gap"] == pytest.approx(float((p_cf - p).abs().mean()), rel=1e-5)


def test_a_regression_target_and_a_model_that_says_it_regresses_still_compare_outputs(margin):
    model, x, y = margin
    target = model(x).squeeze(1).detach() * 3 + 0.1  # many values: a regression target
    assert _run(model, x, target)[0].meta["compare"] == "output"
    model.loss = nn.MSELoss()  # the model's word, whatever the labels hold
    assert _run(model, x, y)[0].meta["compare"] == "output"
