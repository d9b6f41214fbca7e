"""The tag segments of a fairness audit's groups in its scalar tags (``positive_rate/<group>``): the group's
name where it has one (``female_x_C``, ``race_A``), ``group_<g>`` where it has none."""

from __future__ import annotations

from collections.abc import Sequence

from lightning_causal.audits.options import tag_safe

__all__ = ["group_tags"]


def group_tags(rows: Sequence[dict], token_swap: bool = False) -> tuple[list[str], list[str]]:
    """Each row of a groups table's tag segment, and the names that gave no tag of their own: the row's
    ``name`` as a tag (:func:`~lightning_causal.audits.options.tag_safe`: ``female × C`` is ``female_x_C``), for a
    token swap's two sides ``first_terms`` / ``second_terms`` (their names list terms), ``group_<g>`` for a row
    without a name and for rows whose names give one tag (feature names ``race A`` and ``race_A``).

    Examples:
        >>> group_tags([{"group": 0, "name": "male × C"}, {"group": 1, "name": "female × C"}, {"group": 2}])
        (['male_x_C', 'female_x_C', 'group_2'], [])
        >>> group_tags([{"group": 0, "name": "race A"}, {"group": 1, "name": "race_A"}])
        (['group_0', 'group_1'], ['race A', 'race_A'])
    """
    tags = [("first_terms", "second_terms")[row["group"]] if token_swap and "name" in row
            else tag_safe(row["name"]) if "name" in row else f"group_{row['group']}" for row in rows]
    clashing = [tags.count(t) > 1 for t in tags]
    if any(clashing):
        tags = [f"group_{row['group']}" if c else t for row, t, c in zip(rows, tags, clashing)]
        if len(set(tags)) < len(tags):  # a name made 'group_<k>' meets group k: every group by its id
            tags, clashing = [f"group_{row['group']}" for row in rows], ["name" in row for row in rows]
    return tags, [str(row["name"]) for row, c in zip(rows, clashing) if c]
