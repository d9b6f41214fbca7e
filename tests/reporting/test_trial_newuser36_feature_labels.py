"""newuser36: a 60-column table's top features are named readably in the bars.

With 32 columns ``behavioural_score_component_<i>_normalised`` the cut names collided, and short_labels fell back to
numbering every label of the figure: "30: behavioural_score_c…", "9: behavioural_score_co…" (which component: lost),
"0: credit_utilisation_r…" (a name that never collided, cut shorter), "43: employment_status=u…" (the one-hot
column's value, what tells its block apart, lost).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch

from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tabular_maps import tabular_maps

NAMES = (["credit_utilisation_ratio_last_12_months", "number_of_late_payments_over_30_days"]
         + [f"behavioural_score_component_{i:02d}_normalised" for i in range(32)]
         + [f"employment_status={c}" for c in ("employed_full_time", "employed_part_time", "unemployed", "retired")])


def _labels(order: list[int]) -> list[str]:
    """The drawn labels, top bar first, of a map whose mean |effect| ranks the columns ``order``."""
    d = len(NAMES)
    scale = torch.zeros(d)
    for rank, column in enumerate(order):
        scale[column] = float(len(order) - rank)
    maps = {"causal": torch.ones(4, d) * scale}
    data = MapData(audit="input_effect", inputs=torch.randn(4, d), maps=maps, labels=None,
                   meta={"feature_names": NAMES, "targets": [0, 1, 0, 1]})
    (_, fig), = tabular_maps(data, top=len(order))
    return [t.get_text() for t in fig.axes[0].get_yticklabels()][::-1]


def test_long_column_names_keep_what_tells_them_apart():
    unemployed = NAMES.index("employment_status=unemployed")
    labels = _labels([0, 1, 2 + 30, 2 + 9, unemployed, unemployed + 1])
    assert labels == ["credit_utilisation_rati…", "number_of_late_payments…", "behavioura…30_normalised",
                      "behavioura…09_normalised", "employment_s…=unemployed", "employment_stat…=retired"]
    assert all(len(t) <= 24 for t in labels)


def test_two_components_among_the_top_rows_keep_their_whole_number():
    """Sobol' interval bars label their top rows only: of components 01 and 21 the middle cut kept "…1_normalised"
    for both, the component's first digit lost."""
    from lightning_causal.reporting.chart_figures import interval_bar_figure

    names = ["behavioural_score_component_01_normalised", "credit_utilisation_ratio_last_12_months",
             "behavioural_score_component_21_normalised"]
    rows = [{"group": n, "S": 0.1 * (3 - i), "S_ci": [0.0, 0.4]} for i, n in enumerate(names)]
    labels = [t.get_text() for t in interval_bar_figure(rows, "sobol").axes[0].get_yticklabels()]
    assert labels == ["behavioura…01_normalised", "credit_utilisation_rati…", "behavioura…21_normalised"]


def test_a_comparison_in_a_name_is_not_taken_for_a_one_hot_value():
    """A binned column keeps its comparison whole as a one-hot column its value (review of dcd8bdd: cut at its end,
    "monthly_income_in_thous…" read as the income itself, the threshold lost); a value too long is cut
    at the end."""
    from lightning_causal.reporting.figure_style import short_labels

    assert short_labels(["monthly_income_in_thousands_of_euros<=30", "employment_status=unemployed"]) == [
        "monthly_income_in_t…<=30", "employment_s…=unemployed"]
    assert short_labels(["number_of_dependants_in_household>2", "status=" + "x" * 30], 24) == [
        "number_of_dependants_…>2", "status=xxxxxxxxxxxxxxxx…"]
