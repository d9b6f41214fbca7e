"""FairnessAudit(min_group_size=): the group differences and extremes leave out groups of fewer probe rows, a
note naming them; the groups table and each group's own scalars keep them."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, Intersections


class _Score(nn.Module):
    """Logits (0, z), z = score + sex · race / 2: a positive decision where z > 0."""

    def forward(self, x):
        z = x[:, 2] + 0.5 * x[:, 0] * x[:, 1]
        return torch.stack([torch.zeros_like(z), z], 1)


def _probe() -> Probe:
    # sex, race (0 A, 1 C), score; male A 4 rows (2 positive), male C 4 (3), female A 4 (1), female C 1 (1: z = 0.5)
    rows = [(0, 0, s) for s in (1, -1, 1, -1)] + [(0, 1, s) for s in (1, 1, 1, -1)] + [(1, 0, s) for s in (-1, -1, -1, 1)]
    x = torch.tensor([*rows, (1, 1, 0)], dtype=torch.float)
    return Probe(x, torch.ones(len(x), dtype=torch.long))  # every label positive: TPR = positive rate, FPR undefined


def _audit(**kw) -> FairnessAudit:
    return FairnessAudit(Intersections(AttributeFlip(0), {"sex": 0, "race": 1},
                                       level_names={"sex": ["male", "female"], "race": ["A", "C"]}), **kw)


def test_the_default_compares_every_group():
    r = _audit().run(_Score(), _probe())
    # positive rates 0.5, 0.75, 0.25, 1.0: the female × C group of one row sets both differences
    assert r.scalars["demographic_parity_difference"] == 0.75 and r.scalars["equalized_odds_difference"] == 0.75
    # cf_gap (the flip moves z by 0.5 in race C only): female × C σ(0.5) − σ(0) = 0.122; male × C three rows
    # σ(1.5) − σ(1) = 0.087 and one σ(1) − σ(0.5) = 0.109, mean 0.092
    assert r.meta["extremes"] == {"lowest_positive_rate": "female × A", "highest_positive_rate": "female × C",
                                  "largest_cf_gap": "female × C"}
    assert "min_group_size" not in r.meta and not any("min_group_size" in n for n in r.meta["notes"])


def test_a_smaller_group_is_left_out_of_the_differences_and_extremes_and_named():
    r = _audit(min_group_size=2).run(_Score(), _probe())
    assert r.scalars["demographic_parity_difference"] == 0.5  # 0.75 − 0.25 over the groups of 4 rows
    assert r.scalars["equalized_odds_difference"] == 0.5
    assert r.meta["extremes"] == {"lowest_positive_rate": "female × A", "highest_positive_rate": "male × C",
                                  "largest_cf_gap": "male × C"}
    assert "left out of the group differences (fewer than min_group_size=2 probe rows): female × C (1)" in r.meta["notes"]
    assert r.meta["min_group_size"] == 2
    # the group keeps its row of the table and its own scalars
    assert [row["count"] for row in r.tables["groups"]] == [4, 4, 4, 1]
    assert r.scalars["positive_rate/female_x_C"] == 1.0


def test_no_two_groups_left_give_nan_with_the_cause():
    r = _audit(min_group_size=5).run(_Score(), _probe())
    assert math.isnan(r.scalars["demographic_parity_difference"])
    assert any(n.endswith("fewer than two groups remain: NaN") for n in r.meta["notes"])


@pytest.mark.parametrize("bad", [0, 2.0, True, None])
def test_min_group_size_is_validated(bad):
    with pytest.raises(ValueError, match=r"Expected argument `min_group_size` to be a positive int but got"):
        _audit(min_group_size=bad)


@pytest.mark.parametrize("min_group_size", [2, 5])
def test_a_group_left_out_is_named_in_one_note_only(min_group_size):
    """A group of fewer than min_group_size (<= 30) rows was named twice: among the small groups (< 30 rows) and
    among the groups left out of the differences."""
    r = _audit(min_group_size=min_group_size).run(_Score(), _probe())
    left = ["female × C"] if min_group_size == 2 else ["male × A", "male × C", "female × A", "female × C"]
    for group in left:
        assert sum(f"{group} (" in n for n in r.meta["notes"]) == 1, r.meta["notes"]
    assert not any(n.startswith("small groups") and "female × C" in n for n in r.meta["notes"])


def test_a_group_at_the_threshold_is_compared_in_every_output():
    """min_group_size=4: the groups of exactly 4 rows are compared by the differences, the extremes and the notes alike
    (the filter is worked out once); the group of 1 row is left out of each."""
    r = _audit(min_group_size=4).run(_Score(), _probe())
    assert r.scalars["demographic_parity_difference"] == 0.5  # 0.75 (male × C) − 0.25 (female × A)
    assert r.scalars["equalized_odds_difference"] == 0.5  # TPR = positive rate: every label positive
    assert r.meta["extremes"] == {"lowest_positive_rate": "female × A", "highest_positive_rate": "male × C",
                                  "largest_cf_gap": "male × C"}
    notes = r.meta["notes"]
    assert "left out of the group differences (fewer than min_group_size=4 probe rows): female × C (1)" in notes
    assert any(n.startswith("small groups") and "male × A (4), male × C (4), female × A (4);" in n for n in notes)
    assert any(n.startswith("of 3 groups of >= 4 rows") for n in notes)
    assert r.scalars["positive_rate/female_x_C"] == 1.0 and len(r.tables["groups"]) == 4  # it keeps its row and scalars
