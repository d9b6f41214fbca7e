"""newuser36: the Sobol' interval bars of the top 8 groups fit a TensorBoard card at two thirds.

With S and ST per row and a two-line title (``sobol: indices of P(class 'top_right_patch'), 95% intervals (top 8 of
16)``) the figure was 520 x 369 pixels, which a card (a box of about 400 x 215) showed at 0.58: 9-point labels about
5 points high. Rows of 0.22 in: 520 x 325, shown at 0.66, the labels still apart.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.chart_figures import interval_bar_figure


def test_eight_rows_of_two_metrics_under_a_two_line_title_fit_a_card():
    rows = [{"group": f"{g} (rows 48–63, cols 0–15)", "S": 0.05 * g, "S_ci": [0.0, 0.9], "ST": 0.05 * g, "ST_ci": [0.0, 1.0]}
            for g in range(16)]
    fig = interval_bar_figure(rows, "sobol: indices of P(class 'top_right_patch'), 95% intervals")
    assert fig._suptitle.get_text().count("\n") == 1
    width, height = fig.get_size_inches() * fig.dpi
    assert min(400 / width, 215 / height) >= 0.66, (width, height)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    boxes = sorted((t.get_window_extent(renderer) for t in fig.axes[0].get_yticklabels()), key=lambda b: b.y0)
    assert len(boxes) == 8 and all(low.y1 < high.y0 for low, high in zip(boxes, boxes[1:]))  # labels apart
    title = fig._suptitle.get_window_extent(renderer)
    assert fig.axes[0].get_window_extent(renderer).y1 < title.y0  # the title above the bars
