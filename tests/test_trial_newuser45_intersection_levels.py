"""An intersection of sex with a race code column of 5 levels (newuser45's trial on Adult, race coded 0..4): the code
column's levels are (0, 1) unless ``levels=`` names them. Named with ``level_names`` of its 5 races, the refusal said
'Expected ... 2 distinct names' and nothing of ``levels=``; without names, ``FairnessAudit`` put the rows of races 2-4
(1919 of 2000 probe rows) in no group with a note that named neither the attribute nor its values. The refusal now
says that the levels are the default (0, 1) and how to pass 5, and the note names the values held that are no level."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, Intersections

RACES = ["A", "B", "C", "D", "E"]


def _probe() -> Probe:
    sex = torch.tensor([0.0, 1.0] * 10)
    race = torch.arange(20.0) % 5  # codes 0..4, four rows each
    return Probe(torch.stack([sex, race], 1), (torch.arange(20) % 3 == 0).long())


def test_names_for_more_levels_than_the_default_say_how_to_pass_them() -> None:
    with pytest.raises(ValueError, match=r"2 distinct names.*levels of code column 'race' are \(0, 1\), the default.*"
                                         r"levels=\{'race': range\(5\)\}"):
        Intersections(AttributeFlip(0), {"sex": 0, "race": 1}, level_names={"race": RACES})
    cf = Intersections(AttributeFlip(0), {"sex": 0, "race": 1}, levels={"race": range(5)}, level_names={"race": RACES})
    assert cf.group_names[:6] == ["sex=0 × A", "sex=0 × B", "sex=0 × C", "sex=0 × D", "sex=0 × E", "sex=1 × A"]
    assert cf.groups(_probe().first).tolist() == [0, 6, 2, 8, 4, 5, 1, 7, 3, 9] * 2  # 5 * sex + race, by hand


def test_the_note_names_the_codes_that_are_no_level() -> None:
    torch.manual_seed(0)
    cf = Intersections(AttributeFlip(0), {"sex": 0, "race": 1})  # levels (0, 1): races 2, 3, 4 in no group
    assert cf.unlevelled(_probe().first) == {"race": [2.0, 3.0, 4.0]}
    result = FairnessAudit(cf).run(nn.Linear(2, 2), _probe())
    note = next(n for n in result.meta["notes"] if "in no group" in n)
    assert note.startswith("12 of 20 probe rows are in no group")
    assert "race holds 2, 3, 4, none of its levels 0, 1" in note
    assert "levels={'race': [...]}" in note
    assert [row["count"] for row in result.tables["groups"]] == [2, 2, 2, 2]
