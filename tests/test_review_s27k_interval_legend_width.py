"""The interval figure's legend is one row above the axes (910cbae2), anchored at the axes' right: where the metrics'
names are longer than the figure is wide (four rates of a custom audit's rows, ``true_positive_rate``...), the row ran
past the figure's left edge and the first name was cut off ("...te"). The row now breaks into as many rows as it needs
to fit the figure, which grows to hold them, and still covers no bar, interval or title."""

from __future__ import annotations

from lightning_causal.reporting.chart_figures import interval_bar_figure
from tests.helpers.legends import legend_and_bar_ends

RATES = ["positive_rate", "true_positive_rate", "false_positive_rate", "false_negative_rate"]


def _rows(metrics, k=3):
    return [{"group": f"g{j}", **{m: 0.2 + 0.1 * i + 0.05 * j for i, m in enumerate(metrics)},
             **{f"{m}_ci": [0.1 + 0.1 * i, 0.45 + 0.1 * i + 0.05 * j] for i, m in enumerate(metrics)}} for j in range(k)]


def _legend_in_figure(metrics, k=3):
    fig = interval_bar_figure(_rows(metrics, k), "fairness: positive rate per group, 95% intervals")
    renderer, box, points = legend_and_bar_ends(fig)
    ax = fig.axes[0]
    covered = sum(box.contains(*p) for p in points) + sum(p.get_window_extent(renderer).overlaps(box) for p in ax.patches)
    texts = [t.get_window_extent(renderer) for t in ax.get_legend().get_texts()]
    inside = all(0 <= t.x0 and t.x1 <= fig.bbox.width and 0 <= t.y0 and t.y1 <= fig.bbox.height for t in texts)
    return inside, covered, fig._suptitle.get_window_extent(renderer).overlaps(box)


def test_long_metric_names_stay_inside_the_figure():
    assert _legend_in_figure(RATES) == (True, 0, False)  # failed before: the first name's text began left of the figure
    assert _legend_in_figure(RATES, k=8) == (True, 0, False)


def test_short_names_keep_one_row():
    fig = interval_bar_figure(_rows(["S", "ST"]), "sobol")
    assert fig.axes[0].get_legend()._ncols == 2
