"""newuser63's trial: the unit-importance card of a layer of 100 to 999 units (a 256-wide layer's 16 largest units)
drew its 16 three-digit tick labels level, 1 px apart, so that they read as one number ("109101103110105..."). Labels
drawn level now keep at least 4 px between neighbours, and those that cannot are slanted."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.chart_figures import bar_figure


def _level_gaps(fig) -> list[float]:
    """Pixels between neighbouring tick labels of a figure whose labels are level (none where they are slanted)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    labels = fig.axes[0].get_xticklabels()
    if labels[0].get_rotation() != 0:
        return []
    boxes = [t.get_window_extent(canvas.get_renderer()) for t in labels]
    return [b.x0 - a.x1 for a, b in zip(boxes, boxes[1:])]


def test_the_sixteen_largest_of_a_layer_of_256_units_have_labels_apart() -> None:
    values = torch.zeros(256)
    values[100:116] = torch.linspace(2.0, 1.0, 16)  # the 16 largest are units 100-115: three digits each
    fig = bar_figure(values, "units: block.act", value_label="mean |effect|", item_label="neuron")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [str(u) for u in range(100, 116)]
    assert all(gap >= 4 for gap in _level_gaps(fig))


@pytest.mark.parametrize(("k", "chars"), [(16, 3), (15, 3), (12, 4), (16, 2), (10, 4), (4, 12)])
def test_level_tick_labels_keep_four_pixels_apart(k: int, chars: int) -> None:
    fig = bar_figure(torch.arange(k, 0, -1).float(), "layer", labels=["8" * chars] * k)
    assert all(gap >= 4 for gap in _level_gaps(fig)), (k, chars)
