"""FairnessAudit's TensorBoard card of group positive rates cut a long group label at its end, count included:
UCI Adult's race groups (newuser45 trial) read 'race_Amer-Indian-Es…=23)' and the sex x race intersections
'female × race_Amer-…=10)', the '(n' of the count lost. The group's name is cut now, its count kept whole."""

from __future__ import annotations

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.tensorboard import _interval_figure

RACES = ["Amer-Indian-Eskimo", "Asian-Pac-Islander", "Black", "Other", "White"]


def _labels(names: list[str], counts: list[int]) -> list[str]:
    rows = [{"group": g, "name": name, "count": n, "positive_rate": 0.2, "positive_rate_ci": [0.1, 0.3]}
            for g, (name, n) in enumerate(zip(names, counts))]
    r = AuditResult("sex_x_race", tables={"groups": rows}, meta={"confidence": 0.95})
    fig = _interval_figure(r, "groups", rows)
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


def test_a_long_group_name_is_cut_before_its_count() -> None:
    names = [f"{sex} × race_{race}" for sex in ("female", "male") for race in RACES]
    counts = [10, 18, 96, 4, 520, 13, 40, 102, 8, 1189]
    labels = _labels(names, counts)
    assert [label.rsplit(" (n=", 1)[1] for label in labels] == [f"{n})" for n in counts]  # every count whole
    assert labels[0] == "female × race_Amer-Ind… (n=10)"
    assert labels[2] == "female × race_Black (n=96)"
    assert len(set(labels)) == len(labels) and all(len(label) <= 32 for label in labels)


def test_short_group_names_are_whole() -> None:
    labels = _labels([f"race_{race}" for race in RACES], [23, 58, 198, 12, 1709])
    assert labels == ["race_Amer-Indian-Eskimo (n=23)", "race_Asian-Pac-Islander (n=58)", "race_Black (n=198)",
                      "race_Other (n=12)", "race_White (n=1709)"]
