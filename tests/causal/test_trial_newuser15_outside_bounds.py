"""Inputs outside `bounds` (newuser15 trial: bounds from the training data's range, probe rows beyond it).
Every point the search scores is projected inside the bounds, so a feature the model never reads was moved
there and counted in l1, with no word: a row already of the target class got a 'counterfactual' of L1 5."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure.counterfactuals import counterfactual_explanation


def _model() -> nn.Linear:  # class 1 where x0 > 0; x1 is never read
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        model.bias.zero_()
    return model


def test_input_outside_bounds_warned() -> None:
    x = torch.tensor([[2.0, 5.0], [0.5, 0.5]])  # row 0: class 1 already, x1 = 5 above the bound 1
    with pytest.warns(UserWarning, match=r"1 of 2 inputs lie outside `bounds`.*row 0, feature 0 holds 2, bounds \[0, 1\]"):
        cf = counterfactual_explanation(_model(), x, 1, bounds=(0.0, 1.0))
    assert cf.l1[0] == pytest.approx(5.0)  # what it warns of: 1 + 4 moved although the model needs no change


def test_frozen_or_inside_not_warned() -> None:
    x = torch.tensor([[0.5, 5.0], [-0.5, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cf = counterfactual_explanation(_model(), x, 1, bounds=(-1.0, 1.0), mask=torch.tensor([1.0, 0.0]))  # x1 frozen
    assert cf.success.all()
    assert (cf.counterfactuals[:, 1] == x[:, 1]).all()
