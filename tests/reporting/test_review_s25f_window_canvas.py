"""``figure_image`` of a figure shown in a window (pyplot's, a GUI backend's canvas: a subclass of the Agg canvas for
QtAgg/TkAgg, another class for other backends) must leave the figure on its window's canvas: drawing it on an Agg
canvas of its own put that canvas in the window's place (``FigureCanvasAgg(fig)`` takes the figure), so the window
no longer redrew it. A figure of the library's own keeps the Agg canvas it was drawn on (drawing_s25)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from lightning_causal.reporting.tensorboard import figure_image


class _Window(FigureCanvasAgg):
    """What a GUI backend's canvas is to ``figure_image``: a subclass of the Agg canvas (FigureCanvasQTAgg, TkAgg's)."""


def _figure() -> Figure:
    fig = Figure(figsize=(2, 1), dpi=50)
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 2, 1])
    ax.set_title("a window's figure")
    return fig


def test_a_windows_figure_stays_on_its_windows_canvas():
    fig = _figure()
    window = _Window(fig)
    image = figure_image(fig)
    assert fig.canvas is window
    window.draw()  # the window draws the same pixels
    assert np.array_equal(image, np.asarray(window.buffer_rgba())[..., :3])
    assert np.array_equal(image, figure_image(_figure()))  # and those of a figure of the library's own


def test_a_figure_on_another_backends_canvas_stays_on_it():
    fig = _figure()
    svg = FigureCanvasSVG(fig)
    assert figure_image(fig).shape == (50, 100, 3)
    assert fig.canvas is svg


def test_a_figure_of_its_own_keeps_the_agg_canvas():
    fig = _figure()
    figure_image(fig)
    assert type(fig.canvas) is FigureCanvasAgg


def test_a_windows_figure_stays_on_its_canvas_when_its_draw_fails():
    """review_s25g: a text matplotlib cannot parse (``'$x_$'``) makes the draw raise; the figure stayed on the Agg
    canvas ``figure_image`` made, so its window no longer redrew it once the text was mended."""
    fig = _figure()
    fig.axes[0].set_title("$x_$")
    svg = FigureCanvasSVG(fig)
    with pytest.raises(ValueError):
        figure_image(fig)
    assert fig.canvas is svg
