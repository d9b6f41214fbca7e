"""A unit-importance bar figure of a transformer's layer: its title, ``"<audit>: <layer path>"``, ran past the
520-pixel figure and was cut at its edge (``"unit_importance: model.bert.encoder.layer.0.attention.self.que"``), so
that TensorBoard's card named no layer one could tell from its LoRA wrapper's base. The title is in lines that fit."""

from __future__ import annotations

import torch

from lightning_causal.reporting.chart_figures import bar_figure


def _title_extent(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box = fig.axes[0].title.get_window_extent(renderer)
    return box.x0, box.x1, fig.bbox.width, fig.axes[0].title.get_text()


def test_a_long_layer_path_in_the_title_stays_inside_the_figure():
    title = "unit_importance: model.bert.encoder.layer.0.attention.self.query"
    x0, x1, width, text = _title_extent(bar_figure(torch.arange(32.0), title))
    assert 0 <= x0 and x1 <= width, (x0, x1, width)
    assert text.replace("\n", " ") == title  # every character drawn, broken after ": "


def test_a_short_title_keeps_one_line_and_the_height():
    fig = bar_figure(torch.arange(4.0), "unit_importance: model.conv1")
    assert "\n" not in fig.axes[0].get_title() and fig.get_figheight() == 2.7
