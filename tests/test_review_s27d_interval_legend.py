"""The Sobol' (and other) interval figures of several metrics (S and ST) drew their legend inside the axes
(``loc="best"``): with 4 groups of even indices the box covered the caps of two ST error bars (found drawing
SobolAudit-like rows; leftover note of the review_s27d brief). The legend is a row above the axes now, where it covers
no bar, no error bar and not the title."""

from __future__ import annotations

from lightning_causal.reporting.chart_figures import interval_bar_figure
from tests.helpers.legends import legend_and_bar_ends

EVEN = [(0.25, 0.3), (0.2, 0.3), (0.25, 0.3), (0.2, 0.35)]


def _rows(pairs):
    return [{"group": f"x{j}", "S": s, "S_ci": [s - 0.1, s + 0.1], "ST": t, "ST_ci": [t - 0.1, t + 0.12]}
            for j, (s, t) in enumerate(pairs)]


def _covered(rows, title="sobol: indices of the output, 95% intervals"):
    fig = interval_bar_figure(rows, title)
    renderer, box, points = legend_and_bar_ends(fig)  # points: each error bar's two ends
    ax = fig.axes[0]
    points += [p for line in ax.lines if line.get_marker() not in ("None", None, "")  # its caps (not the axis line at 0)
               for p in ax.transData.transform(line.get_xydata())]
    assert len(points) == 2 * 2 * 2 * len(rows)  # two metrics: their bars' ends and caps
    errorbars = sum(box.contains(*p) for p in points)
    bars = sum(p.get_window_extent(renderer).overlaps(box) for p in ax.patches)
    return errorbars, bars, fig._suptitle.get_window_extent(renderer).overlaps(box)


def test_the_legend_covers_no_interval_of_four_groups():
    assert _covered(_rows(EVEN)) == (0, 0, False)


def test_nor_of_one_group_nor_under_a_two_line_title():
    assert _covered(_rows(EVEN[:1])) == (0, 0, False)
    assert _covered(_rows(EVEN), "sobol: indices of the output, 95% intervals, a long title that wraps onto a second "
                                 "line of text here") == (0, 0, False)
