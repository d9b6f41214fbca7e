"""Review of 2d3dd1a6: a +inf task loss was said to be "a label of a class whose output is -inf, one the model rules
out" whatever the labels, also of a regression (``task_loss`` an MSE, float labels) whose outputs overflow float32
(weights of 1e20: (1e20)² = inf), where no class exists. The ruled-out class is named alone where the labels are class
indices; of other labels the message names outputs that overflow first."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.repair.objective import add_terms

RULED_OUT = "the task loss is +inf: a label of a class whose output is -inf"
OVERFLOW = "the task loss is +inf: outputs that overflow their dtype (weights that diverged"


def test_a_regressions_infinite_loss_names_overflowing_outputs() -> None:
    x, y = torch.randn(4, 3), torch.randn(4)
    with pytest.raises(FloatingPointError) as error:
        add_terms(nn.Linear(3, 1), torch.tensor(float("inf")), [], {}, (x, y, ()), 0)
    assert OVERFLOW in str(error.value) and RULED_OUT not in str(error.value)


def test_class_labels_name_the_ruled_out_class() -> None:
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 3])
    with pytest.raises(FloatingPointError) as error:
        add_terms(nn.Linear(3, 4), torch.tensor(float("inf")), [], {}, (x, y, ()), 0)
    assert RULED_OUT in str(error.value) and OVERFLOW not in str(error.value)
