"""FairnessAudit's per-group scalars are tagged by the group's name (``positive_rate/female_x_C``), not ``group_<g>``
(which a reader of TensorBoard cannot tell apart), ``group_<g>`` where a group has no name or names clash."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.audits.options import check_distinct_tags, tag_safe
from lightning_causal.causal import AttributeFlip, Counterfactual, Intersections, TokenSwap
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, scalar_tags
from tests.helpers.writers import RecordingWriter


def _table():
    # sex (0 male, 1 female), race one-hot (A, C), score; 8 rows: every (sex, race) twice
    sex = torch.tensor([0.0, 0, 0, 0, 1, 1, 1, 1])
    race_c = torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1])
    score = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.25, 3.0])
    return torch.stack([sex, 1 - race_c, race_c, score], 1)


class _ScoreAndSexInC(nn.Module):
    """p_1 = σ(score + 2 sex race_C): positive decisions score > 0 (sex matters in race C only)."""

    def forward(self, x):
        z = x[:, 3] + 2 * x[:, 0] * x[:, 2]
        return torch.stack([torch.zeros_like(z), z], 1)


def _sex_by_race(**names) -> Intersections:
    return Intersections(AttributeFlip(0), {"sex": 0, "race": [1, 2]},
                         level_names=names or {"sex": ["male", "female"], "race": ["A", "C"]})


def test_the_scalars_of_intersections_are_tagged_by_their_names():
    x = _table()
    r = FairnessAudit(_sex_by_race()).run(_ScoreAndSexInC(), Probe(x))
    per_group = {k for k in r.scalars if "/" in k}
    assert per_group == {f"{m}/{g}" for m in ("positive_rate", "cf_gap") for g in ("male_x_A", "male_x_C", "female_x_A", "female_x_C")}
    # positive decisions (score + 2 sex race_C > 0): male A 1 of 2 (1.0, -1.0), male C 1 of 2 (0.5, -0.5),
    # female A 1 of 2 (2.0, -2.0), female C 2 of 2 (2.25, 5.0)
    assert [r.scalars[f"positive_rate/{g}"] for g in ("male_x_A", "male_x_C", "female_x_A", "female_x_C")] == [0.5, 0.5, 0.5, 1.0]
    assert r.scalars["cf_gap/male_x_A"] == 0.0 and r.scalars["cf_gap/female_x_A"] == 0.0  # the flip is not read in race A
    s = torch.sigmoid
    # male C scores 0.5, -0.5 (predicted classes 1, 0), flipped to female: logits +2, so |Δp_1| = σ(2.5) − σ(0.5) and
    # |Δp_0| = σ(0.5) − σ(-1.5) = σ(1.5) − σ(-0.5)
    want = (float(s(torch.tensor(2.5)) - s(torch.tensor(0.5))) + float(s(torch.tensor(1.5)) - s(torch.tensor(-0.5)))) / 2
    assert r.scalars["cf_gap/male_x_C"] == pytest.approx(want, abs=1e-6)
    assert r.meta["group_tags"] == ["male_x_A", "male_x_C", "female_x_A", "female_x_C"]


class _BySex(Counterfactual):
    """Flips column 0, its groups the column's values: groups() without group_names, no name to tag by."""

    column = 0

    def flip_counterfactual(self, x):
        x = x.clone()
        x[:, 0] = 1 - x[:, 0]
        return x

    def groups(self, x):
        return x[:, 0].long()


def test_a_group_without_a_name_keeps_its_id():
    r = FairnessAudit(_BySex()).run(_ScoreAndSexInC(), Probe(_table()))
    assert {k for k in r.scalars if k.startswith("positive_rate/")} == {"positive_rate/group_0", "positive_rate/group_1"}


def test_names_that_give_one_tag_are_refused_or_tagged_by_id():
    with pytest.raises(ValueError, match=r"Expected argument `counterfactual` to name every group apart but 'a b × A' and "
                       r"'a_b × A' both give the scalar tags positive_rate/a_b_x_A and cf_gap/a_b_x_A .*; rename one "
                       r"\(Intersections: `level_names=`\)$"):
        FairnessAudit(_sex_by_race(sex=["a b", "a_b"], race=["A", "C"]))
    # one-hot columns whose names clash as tags (derived names, known only at run): tagged by id, with a note
    def next_race(x):
        return torch.cat([x[:, :1], x[:, 1:3].roll(1, dims=1), x[:, 3:]], 1)

    r = FairnessAudit(next_race, sensitive=[1, 2], feature_names=["sex", "race A", "race_A", "score"]).run(_ScoreAndSexInC(), Probe(_table()))
    assert {k for k in r.scalars if k.startswith("positive_rate/")} == {"positive_rate/group_0", "positive_rate/group_1"}
    assert any("'race A', 'race_A' give one scalar tag" in note for note in r.meta["notes"])


def test_the_intersection_sign_is_read_as_x_in_every_tag():
    """One rule for every name (tag_safe): a group's tag is what a class or feature of that name gets, and ``×``
    without spaces is a sign of its own, not glued into the words (it was 'femalexC' for a group, 'female_C' for a
    feature, and 'a×b' and 'a b' clashed as class names)."""
    assert [tag_safe(n) for n in ["female × C", "female×C", "sex × race"]] == ["female_x_C", "female_x_C", "sex_x_race"]
    check_distinct_tags("class_names", ["a×b", "a b"], "anomaly_index/<name>", "class")  # a_x_b and a_b

    class ByLevel(_BySex):  # a counterfactual of its own, its groups named without spaces
        group_names = ["male×C", "female×C"]

    r = FairnessAudit(ByLevel()).run(_ScoreAndSexInC(), Probe(_table()))
    assert r.meta["group_tags"] == ["male_x_C", "female_x_C"]


def test_a_token_swap_tags_its_two_sides():
    class Bag(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.emb, self.out = nn.Embedding(8, 3), nn.Linear(3, 2)

        def forward(self, ids):
            return self.out(self.emb(ids).mean(1))

    ids = torch.tensor([[1, 5, 2], [1, 6, 2], [3, 5, 4], [3, 4, 2]])
    r = FairnessAudit(TokenSwap([(5, 6)]), vocabulary=[f"w{k}" for k in range(8)]).run(Bag(), Probe(ids))
    assert {k for k in r.scalars if k.startswith("positive_rate/")} == {"positive_rate/first_terms", "positive_rate/second_terms"}


def test_tensorboard_charts_every_groups_rate_in_one_chart():
    writer = RecordingWriter()
    result = FairnessAudit(_sex_by_race()).run(_ScoreAndSexInC(), Probe(_table()))
    TensorBoardRenderer().render(writer, 0, [result], None, step=0)
    assert "causal/fairness/positive_rate/female_x_C" in scalar_tags(result)
    charts = writer.layouts[-1]["causal: fairness"]
    assert "female_x_C" not in charts  # a group is a series of its metric's chart, not a metric of its own
    assert charts["positive_rate"] == ["Multiline", ["^causal/fairness/positive_rate/[^/]+$"]]
