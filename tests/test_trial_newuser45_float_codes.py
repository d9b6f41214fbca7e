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
    FractionalCodeWarning,
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
    # warned of before the pass (FractionalCodeWarning, tests/test_review_s27f_code_columns_checked_before.py), named after it
    with pytest.warns(FractionalCodeWarning), pytest.raises(ValueError, match=r"argument `baseline` to give inputs.*category code kept in a float column"):
        input_effects(model, x, baseline=torch.tensor([0.0, 0.0, code]))
    with pytest.warns(FractionalCodeWarning), pytest.raises(ValueError, match=r"argument `baseline`.*0 <= code < the size"):
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
    with pytest.warns(FractionalCodeWarning), pytest.raises(ValueError, match=r"argument `values`.*category code kept in a float column"):
        average_causal_effect(model, x, values=values)


def test_a_counterfactual_that_gives_no_code_is_named() -> None:
    model, x = _data()
    with pytest.warns(FractionalCodeWarning, match=r"_plus_one.*column 2 to 4"), \
            pytest.raises(ValueError, match=r"argument `counterfactual`.*category code kept in a float column and cast inside the model"):
        counterfactual_fairness_gap(model, x, _plus_one)
    term = CounterfactualFairnessTerm(_plus_one)
    with pytest.warns(FractionalCodeWarning, match=r"_plus_one.*column 2 to 4"), \
            pytest.raises(ValueError, match=r"argument `counterfactual`.*category code kept in a float column and cast inside the model"):
        term.loss(model, x, torch.zeros(16, dtype=torch.long))


class RaceCode(nn.Module):
    """A race code 0..4 as an integer input ``[N, 1]``, read through the view ``race[:, 0]``."""

    def __init__(self) -> None:
        super().__init__()
        self.race = nn.Embedding(5, 2)
        self.head = nn.Linear(5, 2)

    def forward(self, race: torch.Tensor, xc: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.race(race[:, 0]), xc], 1))


def test_integer_codes_read_through_a_column_view_are_named_too() -> None:
    # the vocabulary check before the pass mapped embeddings that read the whole row only: this one failed in nn.Embedding
    torch.manual_seed(0)
    model = RaceCode().eval()
    race, xc = torch.arange(10).remainder(5).unsqueeze(1), torch.randn(10, 3)
    gap = counterfactual_fairness_gap(model, race, lambda r: (r + 1) % 5, additional_forward_args=(xc,))
    with torch.no_grad():  # the gap of a valid next-level counterfactual, by hand
        p = model(race, xc).softmax(1)
        t = p.argmax(1, keepdim=True)
        expected = (model((race + 1) % 5, xc).softmax(1).gather(1, t) - p.gather(1, t)).abs().mean()
    assert float(gap["mean_abs"]) == pytest.approx(float(expected), abs=1e-6)
    with pytest.raises(ValueError, match=r"argument `counterfactual`.*column 0 .*'race'.*0 <= code < 5, but got 5"):
        counterfactual_fairness_gap(model, race, lambda r: r + 1, additional_forward_args=(xc,))
