"""``figure_image`` draws a figure drawn before on the canvas it kept (drawing_s25): its renderer holds the sizes of
the texts it measured, so a figure drawn again (the writer's reused heatmap rows) measures only what is new. A new
canvas per draw measured every tick label, title and note again. The pixels are those of a new canvas."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure

from lightning_causal.reporting.image_figures import heatmap_row
from lightning_causal.reporting.tensorboard import figure_image


def _measured(monkeypatch) -> list[str]:
    """The texts the Agg renderers measure from now on (those not in matplotlib's cache of text sizes)."""
    texts: list[str] = []
    own = RendererAgg.get_text_width_height_descent

    def counted(self, s, prop, ismath):
        texts.append(s)
        return own(self, s, prop, ismath)

    monkeypatch.setattr(RendererAgg, "get_text_width_height_descent", counted)
    return texts


def test_a_figure_drawn_again_keeps_its_canvas_and_measures_no_text_again(monkeypatch):
    g = torch.Generator().manual_seed(0)
    fig = heatmap_row(torch.rand(1, 8, 8, generator=g), {"causal": torch.randn(1, 8, 8, generator=g)}, title="explains class 3",
                      note="red: raises the explained class's score, blue: lowers it")
    measured = _measured(monkeypatch)
    first = figure_image(fig)
    canvas, renderer = fig.canvas, fig.canvas.get_renderer()
    assert measured  # the tick labels, titles and note of the first draw
    measured.clear()
    again = figure_image(fig)
    assert fig.canvas is canvas and canvas.get_renderer() is renderer
    assert measured == []  # a new canvas measured them all again
    assert np.array_equal(first, again)


def test_a_kept_canvas_draws_the_pixels_of_a_new_one():
    g = torch.Generator().manual_seed(1)
    sample, maps = torch.rand(1, 6, 10, generator=g), {"causal": torch.randn(1, 6, 10, generator=g)}
    fig = heatmap_row(sample, maps, title="first")
    figure_image(fig)
    fig._suptitle.set_text("a title of another width, drawn on the kept canvas")  # what is drawn changes between draws
    fig.axes[1].get_images()[0].set_data(torch.zeros(6, 10).numpy())
    kept = figure_image(fig)
    FigureCanvasAgg(fig).draw()  # a new canvas, as every draw had before
    assert np.array_equal(kept, np.asarray(fig.canvas.buffer_rgba())[..., :3])


def test_a_figure_of_another_size_is_drawn_at_its_new_size():
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.text(0.5, 0.5, "x")
    assert figure_image(fig).shape == (50, 100, 3)
    fig.set_size_inches(3, 1)
    assert figure_image(fig).shape == (50, 150, 3)
