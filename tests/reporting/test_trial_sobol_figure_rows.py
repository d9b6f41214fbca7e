"""The Sobol' interval figure draws the first 8 groups: its title must say when groups are left out
(nine one-hot-grouped columns of a tabular model lost the ninth, race, without a word)."""

import pytest

pytest.importorskip("matplotlib")

from lightning_causal.reporting.figures import interval_bar_figure  # noqa: E402


def _rows(n):
    return [{"group": f"g{i}", "S": 0.1, "S_ci": [0.0, 0.2], "ST": 0.2, "ST_ci": [0.1, 0.3]} for i in range(n)]


def test_the_title_says_how_many_groups_the_figure_leaves_out():
    fig = interval_bar_figure(_rows(9), "sobol: indices of P(class 0)")
    assert "top 8 of 9" in fig._suptitle.get_text().replace("\n", " ")
    assert len(fig.axes[0].get_yticklabels()) == 8


def test_a_figure_of_every_group_keeps_its_title():
    fig = interval_bar_figure(_rows(8), "sobol: indices of P(class 0)")
    assert fig._suptitle.get_text() == "sobol: indices of P(class 0)"
