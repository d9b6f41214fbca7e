"""Intersectional fairness (newuser30 trial): ``Intersections`` groups of sex × race, each group's own
counterfactual gap, Wilson intervals and notes for small and empty groups, and the groups' figure."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.audits.fairness import wilson_interval
from lightning_causal.causal import AttributeFlip, Intersections
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

COLUMNS = ["sex", "race_A", "race_B", "race_C", "score"]


class SexWithinC(nn.Module):
    """Logits ``(−z/2, z/2)``, ``z = score + 2 (2 sex − 1) race_C``, so p_1 = σ(z): sex moves the decision in
    race C only (an interaction: no main effect of sex or of race)."""

    def forward(self, x):
        z = x[:, 4] + 2 * (2 * x[:, 0] - 1) * x[:, 3]
        return torch.stack([-z / 2, z / 2], 1)


def _rows():
    # sex, race (A, B, C one-hot), score; race C rows 4..6
    sex = [0, 1, 0, 1, 0, 1, 1]
    race = [0, 0, 1, 1, 2, 2, 2]
    score = [1.0, -1.0, 0.5, 0.0, 0.0, 0.0, 1.0]
    x = torch.cat([torch.tensor(sex, dtype=torch.float)[:, None], nn.functional.one_hot(torch.tensor(race), 3).float(),
                   torch.tensor(score)[:, None]], 1)
    return x


def _sex_by_race() -> Intersections:
    return Intersections(AttributeFlip("sex", columns=COLUMNS), {"sex": "sex", "race": ["race_A", "race_B", "race_C"]},
                         columns=COLUMNS, level_names={"sex": ["male", "female"]})


def test_intersections_number_and_name_every_combination():
    cf = _sex_by_race()
    assert cf.group_names == ["male × race_A", "male × race_B", "male × race_C",
                              "female × race_A", "female × race_B", "female × race_C"]
    # 3 sex + race: (0,A)=0 (1,A)=3 (0,B)=1 (1,B)=4 (0,C)=2 (1,C)=5 (1,C)=5
    assert cf.groups(_rows()).tolist() == [0, 3, 1, 4, 2, 5, 5]
    assert torch.equal(cf(_rows()), AttributeFlip(0)(_rows())) and cf.column == 0


def test_each_group_has_its_own_gap_count_and_interval_by_hand():
    x = _rows()
    result = FairnessAudit(_sex_by_race(), feature_names=COLUMNS).run(SexWithinC(), Probe(x))
    rows = {row["name"]: row for row in result.tables["groups"]}
    assert list(rows) == ["male × race_A", "male × race_B", "male × race_C", "female × race_A", "female × race_B",
                          "female × race_C"]
    # race A/B: the flip changes nothing the model reads -> gap exactly 0
    for name in ("male × race_A", "male × race_B", "female × race_A", "female × race_B"):
        assert rows[name]["cf_gap"] == 0.0 and rows[name]["count"] == 1
    # race C: logit score ± 2; male (score 0): predicted class 0 (logit -2), flipped +2: Δp0 = σ(-2) − σ(2)
    s = torch.sigmoid
    assert rows["male × race_C"]["cf_gap"] == pytest.approx(float(s(torch.tensor(2.0)) - s(torch.tensor(-2.0))), abs=1e-6)
    # female (scores 0, 1): logits 2, 3 -> class 1; flipped -2, -1: |Δp1| = σ(2) − σ(-2), σ(3) − σ(-1)
    want = (float(s(torch.tensor(2.0)) - s(torch.tensor(-2.0))) + float(s(torch.tensor(3.0)) - s(torch.tensor(-1.0)))) / 2
    assert rows["female × race_C"]["cf_gap"] == pytest.approx(want, abs=1e-6)
    assert rows["female × race_C"]["count"] == 2 and rows["female × race_C"]["positive_rate"] == 1.0
    assert result.scalars["cf_gap/female_x_race_C"] == pytest.approx(want, abs=1e-6)
    assert rows["female × race_C"]["positive_rate_ci"] == pytest.approx(wilson_interval(2, 2))
    # male × race_C: σ(2) − σ(−2) = 0.762 > the female mean 0.723; positive rates 1, 1, 0, 0, 0, 1 (ties: the first)
    assert result.meta["extremes"] == {"lowest_positive_rate": "male × race_C", "highest_positive_rate": "male × race_A",
                                       "largest_cf_gap": "male × race_C"}


def test_wilson_interval_against_the_closed_form():
    # 0 of 5: [0, z²/(n + z²)] = [0, 3.8415/8.8415]; 50 of 100: 0.5 ± 1.96·√(0.25/100 + z²/4e4)/(1 + z²/100)
    z2 = 1.959963984540054 ** 2
    assert wilson_interval(0, 5) == pytest.approx([0.0, z2 / (5 + z2)])
    half = 1.959963984540054 * math.sqrt(0.25 / 100 + z2 / 40000) / (1 + z2 / 100)
    assert wilson_interval(50, 100) == pytest.approx([0.5 - half, 0.5 + half])
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_small_and_empty_groups_are_named_in_notes():
    x = _rows()[:5]  # no female × race_C row
    result = FairnessAudit(_sex_by_race(), feature_names=COLUMNS).run(SexWithinC(), Probe(x))
    notes = " ".join(result.meta["notes"])
    assert "small groups (< 30 probe rows" in notes and "male × race_A (1)" in notes
    assert "no probe row in the group(s) female × race_C" in notes
    assert [row["name"] for row in result.tables["groups"]][-1] == "female × race_B"


def test_the_groups_figure_draws_every_group_by_its_name_and_count():
    g = torch.Generator().manual_seed(0)
    race = torch.arange(40) % 5
    x = torch.cat([(torch.arange(40) // 5 % 2).float()[:, None], nn.functional.one_hot(race, 5).float(),
                   torch.randn(40, 1, generator=g)], 1)
    cf = Intersections(AttributeFlip(0), {"sex": 0, "race": [1, 2, 3, 4, 5]}, level_names={"race": list("ABCDE")})
    result = FairnessAudit(cf).run(nn.Linear(7, 2), Probe(x))
    fig = TensorBoardRenderer().figures([result])["causal/fairness/intervals/groups"]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    # before: labelled by ids 0..7 and cut to "top 8 of 10", as if the rows were ranked
    assert labels == [f"sex={s} × {r} (n=4)" for s in (0, 1) for r in "ABCDE"]
    assert "top" not in fig.texts[0].get_text() and "positive rate per group, 95% intervals" in fig.texts[0].get_text()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"attributes": {}}, "`attributes` to be a non-empty mapping"),
    ({"attributes": {"race": [1]}}, "two or more distinct columns"),
    ({"attributes": {"sex": 0, "race": [0, 1]}}, "column 0 is in 'sex' and 'race'"),
    ({"attributes": {"sex": "sex"}}, "a name needs `columns=`"),
    ({"attributes": {"sex": 0}, "levels": {"sex": [1, 1]}}, "two or more distinct finite numbers"),
    ({"attributes": {"race": [1, 2]}, "levels": {"race": [0, 1]}}, "no `levels` for attribute 'race'"),
    ({"attributes": {"sex": 0}, "level_names": {"sex": ["f"]}}, r"`level_names\['sex'\]` to be 2 distinct names"),
    ({"attributes": {"sex": 0}, "level_names": {"age": ["a", "b"]}}, "keys of argument `level_names`"),
])
def test_intersections_refuse_bad_arguments_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Intersections(AttributeFlip(0), **kwargs)


def test_code_columns_with_levels_and_rows_of_no_level():
    cf = Intersections(lambda x: x, {"sex": 0, "race": 1}, levels={"race": [10, 20, 30]})
    x = torch.tensor([[1.0, 30.0], [0.0, 10.0], [1.0, 25.0], [2.0, 10.0]])
    assert cf.group_names[:3] == ["sex=0 × race=10", "sex=0 × race=20", "sex=0 × race=30"]
    assert cf.groups(x).tolist() == [5, 0, -1, -1]
    with pytest.raises(ValueError, match="D > 1"):
        cf.groups(torch.zeros(3, 1))


def test_the_recipe_for_intersections_gives_the_subclass_groups_and_each_gap_by_hand():
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    base = next(b for b in blocks if "class SexFlipByRace" in b)
    ns: dict = {}
    exec(compile(base, "<recipes.md: one-hot fairness>", "exec"), ns)  # noqa: S102 - the docs' own example
    exec(compile(next(b for b in blocks if "Intersections(" in b), "<recipes.md: intersections>", "exec"), ns)  # noqa: S102
    got, want = ns["by_intersection"], ns["by_both"]
    assert ns["sex_x_race"].group_names[:2] == ["female × race_Black", "female × race_Other"]
    assert [r["count"] for r in got.tables["groups"]] == [r["count"] for r in want.tables["groups"]]
    assert got.scalars["demographic_parity_difference"] == want.scalars["demographic_parity_difference"]
    x, model, block = ns["x"], ns["model"], ns["block"]
    with torch.no_grad():
        p = model(x).softmax(1)
        x_cf = x.clone()
        x_cf[:, 2] = 1 - x_cf[:, 2]
        t = p.argmax(1, keepdim=True)
        delta = (model(x_cf).softmax(1).gather(1, t) - p.gather(1, t)).squeeze(1).abs()
    ids = 3 * x[:, 2].long() + x[:, block].argmax(1)
    assert [r["cf_gap"] for r in got.tables["groups"]] == pytest.approx([float(delta[ids == k].mean()) for k in range(6)], abs=1e-6)


def test_world_gaps_compare_every_sex_race_world_by_hand():
    from lightning_causal.causal import world_gaps

    x = _rows()
    g = world_gaps(SexWithinC(), x, _sex_by_race())
    assert g["names"] == _sex_by_race().group_names
    # world (s, r): z = score + 2 (2s − 1) [r = C]; t = the class predicted on x (z > 0: class 1; z = 0: class 0)
    score, sex, race_c = x[:, 4].double(), x[:, 0].double(), x[:, 3].double()
    z = score + 2 * (2 * sex - 1) * race_c
    t1 = z > 0

    def p_t(zw):
        p1 = torch.sigmoid(zw)
        return torch.where(t1, p1, 1 - p1)

    worlds = {(s, r): p_t(score + 2 * (2 * s - 1) * (r == 2)) for s in (0, 1) for r in range(3)}
    keys = list(worlds)
    want = torch.tensor([[float((worlds[a] - worlds[b]).abs().mean()) for b in keys] for a in keys], dtype=torch.float64)
    assert torch.allclose(g["mean_abs"], want, atol=1e-6)
    assert g["worst_pair"] == ("male × race_C", "female × race_C")
    assert g["worst_gap"] == pytest.approx(float(want.max()), abs=1e-6)
    # the worlds without race C are the same to this model: gap exactly 0
    assert float(g["mean_abs"][0, 3]) == 0.0 and float(g["mean_abs"][1, 4]) == 0.0


def test_world_gaps_refuse_fewer_than_two_worlds():
    from lightning_causal.causal import world_gaps

    with pytest.raises(ValueError, match="`worlds` to be an Intersections or a mapping of two or more"):
        world_gaps(SexWithinC(), _rows(), {"only": lambda x: x})
    with pytest.raises(ValueError, match="`worlds`"):
        world_gaps(SexWithinC(), _rows(), {"a": lambda x: x, "b": 3})


def test_rows_in_no_group_are_counted_in_a_note():
    # race coded 0/1/2 but Intersections told the default levels (0, 1): before, the race-2 rows left the
    # group metrics without a word
    x = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, -1.0], [0.0, 2.0, 0.5], [1.0, 2.0, 0.0], [1.0, 0.0, 2.0]])
    cf = Intersections(AttributeFlip(0), {"sex": 0, "race": 1})
    result = FairnessAudit(cf).run(nn.Linear(3, 2), Probe(x))
    assert sum(row["count"] for row in result.tables["groups"]) == 3
    assert "2 of 5 probe rows are in no group" in " ".join(result.meta["notes"])


def test_the_audit_ranks_the_pairs_of_worlds():
    from lightning_causal.causal import world_gaps

    x = _rows()
    result = FairnessAudit(_sex_by_race(), worlds=True, top_k=3).run(SexWithinC(), Probe(x))
    g = world_gaps(SexWithinC(), x, _sex_by_race())
    rows = result.tables["world_gaps"]
    assert rows[0]["name"] == "male × race_C ↔ female × race_C" and rows[0]["gap"] == pytest.approx(g["worst_gap"])
    assert result.scalars["world_gap_max"] == pytest.approx(g["worst_gap"])
    names = g["names"]
    want = sorted((float(g["mean_abs"][i, j]) for i in range(6) for j in range(i + 1, 6)), reverse=True)[:3]
    assert [r["gap"] for r in rows] == pytest.approx(want)
    assert all(float(g["mean_abs"][names.index(r["world_a"]), names.index(r["world_b"])]) == pytest.approx(r["gap"]) for r in rows)


def test_worlds_need_intersections():
    with pytest.raises(ValueError, match="`worlds=True` with an Intersections"):
        FairnessAudit(AttributeFlip(0), worlds=True)
    with pytest.raises(TypeError, match="`worlds` to be a bool"):
        FairnessAudit(_sex_by_race(), worlds=1)


def test_a_one_hot_flip_inside_intersections_is_warned_of():
    # sex_Male beside sex_Female: flipping one column alone gives rows no encoder makes; the wrapper hid it
    g = torch.Generator().manual_seed(0)
    male = (torch.rand(32, generator=g) < 0.5).float()
    race = nn.functional.one_hot(torch.arange(32) % 2, 2).float()
    x = torch.cat([male[:, None], 1 - male[:, None], race, torch.randn(32, 1, generator=g)], 1)
    cf = Intersections(AttributeFlip(0), {"sex": 0, "race": [2, 3]})
    with pytest.warns(UserWarning, match="the flipped column 0 is one-hot encoded with columns"):
        FairnessAudit(cf).run(nn.Linear(5, 2), Probe(x))
