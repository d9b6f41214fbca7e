"""Matplotlib figures of audit results: plain ``Figure`` objects (no pyplot state, the backend is never switched).

Sized for TensorBoard's image cards, which fit an image into a landscape box of about 380 x 200
pixels: figures about 520 pixels wide (matplotlib's 100 dpi) and about half as high, a handful of
bars each, labels of at least 9 points, and axis labels on every plot.

The figures live in modules named for what they draw, re-exported here (this import path stays):
``figure_style`` (width, colours, label text), ``image_figures`` (inputs, heatmaps, image grids),
``chart_figures`` (bars, confidence intervals, curves) and ``counterfactual_figures``.
"""

from __future__ import annotations

from lightning_causal.reporting.chart_figures import (
    bar_figure,
    curves_figure,
    interval_bar_figure,
    interval_metrics,
)
from lightning_causal.reporting.counterfactual_figures import counterfactual_figure
from lightning_causal.reporting.figure_style import WIDTH, short_label, short_labels, title_lines
from lightning_causal.reporting.image_figures import (
    MAX_COLUMNS,
    heatmap_row,
    image_grid_figure,
    largest_change,
    map_scale,
    show_input,
    strongest_channel,
    to_image,
)

__all__ = [
    "MAX_COLUMNS", "WIDTH", "bar_figure", "counterfactual_figure", "curves_figure", "heatmap_row", "image_grid_figure",
    "interval_bar_figure", "interval_metrics", "largest_change", "map_scale", "short_label", "short_labels", "show_input",
    "strongest_channel", "title_lines", "to_image",
]
