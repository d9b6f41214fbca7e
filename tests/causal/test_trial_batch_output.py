"""``output=`` meant for a model returning ``(logits, features)``, given one that returns a tensor
(trial "batch")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects


def test_an_index_output_on_a_model_returning_one_tensor_says_it_took_a_row():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(6, 4)
    for run in (lambda: input_effects(model, x, output=0), lambda: unit_effects(model, x, "1", output=0)):
        # it said only 'one row per input row (6) but got shape (3,)' and advised a reshaping callable
        with pytest.raises(ValueError, match=r"`output=0` indexed the model's output, itself a tensor of shape \(\d+, 3\), "
                                             r"and took its row 0"):
            run()
    # the column it names is what the message says: the effects on output 0
    column = input_effects(model, x, output=lambda out: out[:, 0:1])
    assert torch.allclose(column, input_effects(model, x, target=0))
