"""The text card's "none had an effect" line (f4211ab3) read the first row of a table only, so a table not sorted by
effect (its first rows of effect 0, a later one of 5) was said to have no effect at all. It now says so only where every
row has an effect of 0."""

from lightning_causal.audits import AuditResult
from lightning_causal.reporting.summary import markdown_summary


def _groups(*effects: float) -> list[dict]:
    return [{"feature": f"step{g}", "group": g, "mean_abs_effect": e} for g, e in enumerate(effects)]


def test_unsorted_table_with_a_later_effect_is_not_said_to_have_none():
    card = markdown_summary(0, [AuditResult("ie", tables={"top_groups": _groups(0.0, 0.0, 0.0, 5.0)})])
    assert "none had an effect" not in card
    assert "top_groups: step3" in card  # the row of effect is shown (the first three rows taken before: none was)


def test_every_row_of_no_effect_still_says_so():
    card = markdown_summary(0, [AuditResult("ie", tables={"top_groups": _groups(0.0, 0.0, 0.0, 0.0)})])
    assert "top_groups: none had an effect (mean_abs_effect 0)" in card
