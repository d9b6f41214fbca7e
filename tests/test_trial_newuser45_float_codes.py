"""A category code kept as a float column and cast inside the model (docs/recipes.md, mixed tabular data:
``self.region(x[:, 5].long())``) set to a value its embedding cannot look up (a baseline code past the last, -1,
ACE values, a counterfactual ``code + 1``) failed deep in ``nn.Embedding`` with ``IndexError: index out of range in
self``, naming nothing (found by the newuser45 trial: a recommender's user id and Adult's race code as float
columns). The error now names the argument that set the value and says what a code column takes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm, InputEffectAudit, Probe
from lightning_causal.causal import (
    average_causal_effect,
    counterfactual_fairness_gap,
    input_effects,
)


class Net(nn.Module):
    """Two numeric columns and a region code 0..3 (a float column, cast here)."""

    def __init__(self) -> None:
        super().__init__()
        self.region = nn.Embedding(4, 2)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([x[:, :2], self.region(x[:, 2].long())], 1))


def _data() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(16, 2, generator=g), torch.randint(0, 4, (16, 1), generator=g).float()], 1)
    return Net().eval(), x


def _plus_one(x: torch.Tensor) -> torch.Tensor:  # every row to the next code: code 3 becomes 4, no region
    return torch.cat([x[:, :2], x[:, 2:] + 1], 1)


@pytest.mark.parametrize("code", [4.0, -1.0])
def test_a_baseline_that_is_no_code_is_named(code: float) -> None:
    model, x = _data()
    with pytest.raises(ValueError, match=r"argument `baseline`.*IndexError.*x\[:, j\]\.long\(\)"):
        input_effects(model, x, baseline=torch.tensor([0.0, 0.0, code]))
    with pytest.raises(ValueError, match=r"argument `baseline`.*0 <= code < the size of the embedding"):
        InputEffectAudit(baseline=torch.tensor([0.0, 0.0, code]), ace_values=None).run(model, Probe(x))


def test_a_baseline_that_is_a_code_gives_the_hand_computed_effect() -> None:
    model, x = _data()
    effects = input_effects(model, x, baseline=torch.tensor([0.0, 0.0, 3.0]), target=1)
    set_to_3 = x.clone()
    set_to_3[:, 2] = 3.0
    with torch.no_grad():
        expected = model(x)[:, 1] - model(set_to_3)[:, 1]
    torch.testing.assert_close(effects[:, 2], expected)


def test_ace_values_that_are_no_code_are_named() -> None:
    model, x = _data()
    values = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 4.0]])
    with pytest.raises(ValueError, match=r"argument `values`.*IndexError.*one of its codes"):
        average_causal_effect(model, x, values=values)


def test_a_counterfactual_that_gives_no_code_is_named() -> None:
    model, x = _data()
    with pytest.raises(ValueError, match=r"argument `counterfactual`.*IndexError.*one of its codes"):
        counterfactual_fairness_gap(model, x, _plus_one)
    term = CounterfactualFairnessTerm(_plus_one)
    with pytest.raises(ValueError, match=r"argument `counterfactual`.*_plus_one.*IndexError.*one of its codes"):
        term.loss(model, x, torch.zeros(16, dtype=torch.long))
