"""Review of the newuser30 trial (git diff d28fdce): ``world_gaps`` runs the factual pass once for all worlds,
and Wilson's interval against the roots of its own quadratic."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_causal.audits.fairness import wilson_interval
from lightning_causal.causal import Intersections, counterfactual_fairness_gap, world_gaps
from lightning_causal.causal.scm.counterfactual import CallableCounterfactual


class CountingModel(nn.Module):
    """Logits ``(0, score + 2 sex · race_1)``; counts the rows it is called on (in a namespace: a number attribute is
    put back by ``audit_mode`` as the model's state)."""

    def __init__(self) -> None:
        super().__init__()
        self.tally = SimpleNamespace(rows=0)

    @property
    def rows(self) -> int:
        return self.tally.rows

    def forward(self, x):
        self.tally.rows += x.shape[0]
        z = x[:, 3] + 2 * x[:, 0] * x[:, 2]
        return torch.stack([torch.zeros_like(z), z], 1)


def _x() -> torch.Tensor:
    # sex, race one-hot (2 levels), score
    return torch.tensor([[0.0, 1, 0, 0.5], [1.0, 0, 1, -1.0], [1.0, 1, 0, 0.0], [0.0, 0, 1, 2.0], [1.0, 0, 1, 0.3]])


def test_world_gaps_run_the_factual_rows_once_and_each_world_its_changed_rows():
    x = _x()
    cf = Intersections(lambda x: x, {"sex": 0, "race": [1, 2]})
    worlds = cf.worlds()
    changed = sum(int((w(x) != x).any(1).sum()) for w in worlds.values())  # 4 + 4 + 4 + 3 = 15 of 4 × 5
    model = CountingModel()
    g = world_gaps(model, x, cf, max_batch_size=64)
    # before: each world called counterfactual_fairness_gap, which ran the 5 factual rows again (4 × 5 + 15 = 35)
    # 2 + 2: samples 0 and 1, then 2 and 4, run alone (newuser58, s40a); 3: the first, an inner and the last of the
    # worlds' stacked rows run alone, a pass each (the stacked-rows check, mends_s42a: a branch on the batch's statistic),
    # and 3 of the factual pass's (leftovers_s43a: its samples took the batch's branch unchecked)
    assert model.rows == 3 + x.shape[0] + 2 + 2 + 3 + changed
    # each world's delta is counterfactual_fairness_gap's for that world alone
    for k, name in enumerate(g["names"]):
        want = counterfactual_fairness_gap(CountingModel(), x, CallableCounterfactual(worlds[name]), warn_one_hot=False)["delta"]
        assert torch.equal(g["delta"][k], want.double())


def test_world_gaps_of_a_noisy_model_that_ignores_the_attributes_are_zero():
    class Noisy(nn.Module):  # draws noise in eval mode; reads the score only
        def forward(self, x):
            z = x[:, 3] + torch.randn(x.shape[0])
            return torch.stack([torch.zeros_like(z), z], 1)

    with pytest.warns(UserWarning):
        g = world_gaps(Noisy(), _x(), Intersections(lambda x: x, {"sex": 0, "race": [1, 2]}), max_batch_size=2)
    # common random numbers: every world's pass of a sample draws its factual noise, so no pair differs
    assert float(g["mean_abs"].abs().max()) == 0.0


def test_world_gaps_refuse_an_x_that_is_no_batch():
    with pytest.raises(ValueError, match="argument `x` to be a tensor"):
        world_gaps(CountingModel(), torch.zeros(0, 4), Intersections(lambda x: x, {"sex": 0, "race": [1, 2]}))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"level_names": {"sex": ["a", "a"]}}, r"`level_names\['sex'\]` to be 2 distinct names"),
    ({"levels": {"sex": [0.1, 0.1000001]}}, r"distinct names but they are named \['sex=0.1', 'sex=0.1'\]"),
])
def test_intersections_refuse_levels_named_alike(kwargs, match):
    # before: two groups of one name, and worlds() (a dict by name) lost a world without a word
    with pytest.raises(ValueError, match=match):
        Intersections(lambda x: x, {"sex": 0, "race": [1, 2]}, **kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    # before: TypeError "'int' object is not iterable", ValueError "could not convert string to float: 'a'",
    # TypeError "cannot convert dictionary update sequence element #0 to a sequence"
    ({"levels": {"sex": 1}}, "levels of attribute 'sex' to be two or more distinct finite numbers but got 1"),
    ({"levels": {"sex": ["a", "b"]}}, r"levels of attribute 'sex' to be two or more distinct finite numbers but got \['a', 'b'\]"),
    ({"levels": {"sex": torch.tensor(1.0)}}, "levels of attribute 'sex' to be two or more distinct finite numbers but got tensor"),
    ({"levels": [0, 1]}, r"argument `levels` to be None or a mapping attribute name -> one entry per level but got \[0, 1\]"),
    ({"level_names": ["a", "b"]}, "argument `level_names` to be None or a mapping"),
])
def test_intersections_refuse_levels_that_are_no_numbers_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Intersections(lambda x: x, {"sex": 0, "race": [1, 2]}, **kwargs)


def test_intersections_take_levels_of_an_array_or_a_tensor():
    import numpy as np

    for levels in (np.array([0, 2]), torch.tensor([0.0, 2.0])):
        cf = Intersections(lambda x: x, {"sex": 0, "race": [1, 2]}, levels={"sex": levels})
        assert cf.groups(torch.tensor([[2.0, 0, 1], [0.0, 1, 0], [1.0, 1, 0]])).tolist() == [3, 0, -1]


def test_a_world_refuses_inputs_without_the_attributes_columns():
    # before: torch's IndexError 'index 5 is out of bounds for dimension 0 with size 3' from inside the world
    cf = Intersections(lambda x: x, {"sex": 0, "race": [1, 5]})
    with pytest.raises(ValueError, match=r"Expected inputs \[N, D\] with D > 5 \(the attributes' columns\) but got \[4, 3\]"):
        world_gaps(nn.Linear(3, 2), torch.zeros(4, 3), cf)


def _roots(k: int, n: int, z: float = 1.959963984540054) -> list[float]:
    """Wilson's bounds are the proportions π with (k/n − π)² = z² π (1 − π) / n: the roots of
    (1 + z²/n) π² − (2 k/n + z²/n) π + (k/n)² = 0."""
    p, a = k / n, 1 + z * z / n
    b, c = -(2 * p + z * z / n), p * p
    root = math.sqrt(b * b - 4 * a * c)
    return [(-b - root) / (2 * a), (-b + root) / (2 * a)]


@pytest.mark.parametrize(("k", "n"), [(0, 5), (1, 5), (3, 10), (7, 9), (5, 5), (13, 400)])
def test_wilson_interval_is_the_roots_of_its_quadratic(k, n):
    assert wilson_interval(k, n) == pytest.approx(_roots(k, n), abs=1e-12)


@pytest.mark.parametrize(("k", "n", "want"), [(81, 263, [0.2553, 0.3662]), (15, 148, [0.0624, 0.1605]),
                                              (0, 20, [0.0, 0.1611]), (1, 29, [0.0061, 0.1718])])
def test_wilson_interval_against_the_published_values(k, n, want):
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (score interval without continuity correction)
    assert [round(v, 4) for v in wilson_interval(k, n)] == want


def test_the_repair_term_of_an_intersections_is_the_wrapped_flips():
    # recipes.md: "CounterfactualFairnessTerm(sex_x_race): its penalty is the sex flip's"
    from lightning_causal.causal import AttributeFlip
    from lightning_causal.repair import CounterfactualFairnessTerm

    torch.manual_seed(0)
    x = torch.cat([torch.randint(0, 2, (8, 1)).float(), nn.functional.one_hot(torch.arange(8) % 2, 2).float(),
                   torch.randn(8, 1)], 1)
    model = nn.Linear(4, 2)
    wrapped = CounterfactualFairnessTerm(Intersections(AttributeFlip(0), {"sex": 0, "race": [1, 2]})).loss(model, x, None)
    bare = CounterfactualFairnessTerm(AttributeFlip(0)).loss(model, x, None)
    assert float(bare.detach()) > 0 and torch.equal(wrapped, bare)
