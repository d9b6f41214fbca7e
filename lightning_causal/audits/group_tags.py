"""The tag segments of a fairness audit's groups in its scalar tags (``positive_rate/<group>``): the group's
name where it has one (``female_x_C``, ``race_A``), ``group_<g>`` where it has none."""

from __future__ import annotations

from collections.abc import Sequence

from lightning_causal.audits.options import tag_safe

__all__ = ["GROUP_METRICS", "check_group_names", "group_tag", "group_tags"]

#: the per-group scalars of FairnessAudit, ``<metric>/<group>``
GROUP_METRICS = ("positive_rate", "tpr", "fpr", "accuracy", "cf_gap")

_RULE = "names are tags with characters other than letters, digits, '_', '.' and '-' made '_', and '×' made 'x'"


def group_tag(name: str) -> str:
    """A group's name as one segment of a scalar tag: :func:`~lightning_causal.audits.options.tag_safe`
    with the intersection sign ``×`` read as ``x``.

    Examples:
        >>> group_tag("female × C"), group_tag("race A"), group_tag("race_A")
        ('female_x_C', 'race_A', 'race_A')
    """
    return tag_safe(str(name).replace("×", "x"))


def check_group_names(names: Sequence[str] | None, counterfactual: object) -> None:
    """Refuse a counterfactual's ``group_names`` two of which give one tag (:func:`group_tag`): their
    scalar series would overwrite each other in the logger, silently (as class names that clash are refused).

    Examples:
        >>> check_group_names(["a b × x", "a_b × x"], "cf")
        Traceback (most recent call last):
        ...
        ValueError: Expected the group_names of the counterfactual 'cf' to name every group apart but 'a b × x' and 'a_b × x' both give the scalar tags positive_rate/a_b_x_x and cf_gap/a_b_x_x (names are tags with characters other than letters, digits, '_', '.' and '-' made '_', and '×' made 'x'), so one series would overwrite the other; rename one (Intersections: `level_names=`)
    """
    seen: dict[str, str] = {}
    for name in names or ():
        tag = group_tag(name)
        if tag in seen:
            raise ValueError(
                f"Expected the group_names of the counterfactual {counterfactual!r:.80} to name every group apart but "
                f"{seen[tag]!r} and {name!r} both give the scalar tags positive_rate/{tag} and cf_gap/{tag} ({_RULE}), so "
                "one series would overwrite the other; rename one (Intersections: `level_names=`)")
        seen[tag] = str(name)


def group_tags(rows: Sequence[dict], token_swap: bool = False) -> tuple[list[str], list[str]]:
    """Each row of a groups table's tag segment, and the names that gave no tag of their own: the row's
    ``name`` as a tag (:func:`group_tag`), for a token swap's two sides ``first_terms`` / ``second_terms``
    (their names list terms), ``group_<g>`` for a row without a name and for rows whose names give one
    tag (feature names ``race A`` and ``race_A``).

    Examples:
        >>> group_tags([{"group": 0, "name": "male × C"}, {"group": 1, "name": "female × C"}, {"group": 2}])
        (['male_x_C', 'female_x_C', 'group_2'], [])
        >>> group_tags([{"group": 0, "name": "race A"}, {"group": 1, "name": "race_A"}])
        (['group_0', 'group_1'], ['race A', 'race_A'])
    """
    tags = [("first_terms", "second_terms")[row["group"]] if token_swap and "name" in row
            else group_tag(row["name"]) if "name" in row else f"group_{row['group']}" for row in rows]
    clashing = [tags.count(t) > 1 for t in tags]
    if any(clashing):
        tags = [f"group_{row['group']}" if c else t for row, t, c in zip(rows, tags, clashing)]
        if len(set(tags)) < len(tags):  # a name made 'group_<k>' meets group k: every group by its id
            tags, clashing = [f"group_{row['group']}" for row in rows], ["name" in row for row in rows]
    return tags, [str(row["name"]) for row, c in zip(rows, clashing) if c]
