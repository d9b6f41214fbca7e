"""Bar and curve tick labels slanted by a count of characters (more than 40 in all): five labels of seven W's (35
characters) were drawn level and ran into each other, while narrow letters would have fitted. They now slant where
their widths, measured in the figure's font on the laid-out axis, leave less than ``LABEL_GAP_PX`` between
neighbours."""

from __future__ import annotations

import matplotlib
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.chart_figures import bar_figure, curves_figure


def _level_gap(fig) -> float:
    """The least room between neighbouring tick labels as drawn, in pixels."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    boxes = [t.get_window_extent(fig.canvas.get_renderer()) for t in fig.axes[0].get_xticklabels() if t.get_text()]
    return min(b.x0 - a.x1 for a, b in zip(boxes, boxes[1:]))


def _rotation(fig) -> float:
    return fig.axes[0].get_xticklabels()[0].get_rotation()


def test_wide_letters_slant_and_narrow_ones_stay_level() -> None:
    matplotlib.use("Agg")
    wide = bar_figure(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]), "t", labels=["WWWWWWW"] * 5)
    narrow = bar_figure(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]), "t", labels=["iiiiiii"] * 5)
    assert _rotation(wide) == 35 and wide.get_figheight() > narrow.get_figheight()
    assert _rotation(narrow) == 0 and _level_gap(narrow) > 4
    many = bar_figure(torch.arange(16.0), "t", labels=[str(100 + i) for i in range(16)])  # 3 digits: slanted as before
    assert _rotation(many) == 35


def test_curve_labels_slant_by_width() -> None:
    x = list(range(5))
    wide = curves_figure({"x": x, "a": [1.0] * 5}, "t", xticklabels=["WWWWWWW"] * 5)
    narrow = curves_figure({"x": x, "a": [1.0] * 5}, "t", xticklabels=["iiiiiii"] * 5)
    assert _rotation(wide) == 35 and _rotation(narrow) == 0 and _level_gap(narrow) > 4
