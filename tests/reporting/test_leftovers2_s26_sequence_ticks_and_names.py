"""Two faults of the sequence figures (reporting/sequence_maps.py). The heatmaps' row locator (``_RowTicks``, a
matplotlib ``Locator``) had no ``tick_values``, so code asking it for the ticks of a range raised
``NotImplementedError``. And in a one-channel figure the map's name on the right-hand axis of its bars ran past the
panel's height ("ShapleyValueSampling" at 9 pt: 149 pixels on a panel of 99; a method of one's own of 40 characters
300), over the title and the note: it is broken into lines at its words now, at 9, 8 or 7 pt, cut with "…" beyond 3
lines of 7 pt, so that it fits."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.sequence_maps import _RowTicks, sequence_maps


def test_the_row_locator_gives_the_ticks_of_a_range():
    (_, fig), = sequence_maps(MapData(torch.rand(1, 8, 40), {"causal": torch.randn(1, 8, 40)}, "ie"))
    FigureCanvasAgg(fig).draw()
    heatmap = next(ax for ax in fig.axes if ax.get_title(loc="left") == "causal")  # the map's 8 channels
    locator = heatmap.yaxis.get_major_locator()
    assert isinstance(locator, _RowTicks)
    assert locator() == [0, 2, 4, 6]  # 8 rows on a panel of about 55 pixels (5059db57)
    assert locator.tick_values(7.5, -0.5) == [0, 2, 4, 6]  # before: NotImplementedError
    assert locator.tick_values(1.5, 4.5) == [2, 4]  # either order, within the range
    assert _RowTicks(5, 8.0).tick_values(-0.5, 4.5) == [0, 1, 2, 3, 4]  # on no axis yet: every row


@pytest.mark.parametrize("name", ["ShapleyValueSampling", "MyOwnGradientTimesInputWithSmoothing_v2",
                                  "my own gradient times input with smoothing v2", "x" * 80])
def test_a_long_map_name_fits_the_height_of_its_panel(name):
    (_, fig), = sequence_maps(MapData(torch.rand(1, 1, 50), {name: torch.randn(1, 1, 50)}, "ie", meta={"targets": [0]}))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    twin = fig.axes[1]  # the bars' axes, the name its label
    label, panel = twin.yaxis.label.get_window_extent(renderer), twin.get_window_extent(renderer)
    assert label.height <= panel.height and panel.y0 <= label.y0 and label.y1 <= panel.y1  # before: 149 to 422 px of 99
    assert label.x1 <= fig.bbox.width  # beside it, inside the figure
    text = twin.yaxis.label.get_text()
    assert text.count("\n") <= 2 and twin.yaxis.label.get_fontsize() >= 7.0
    if name != "x" * 80:
        assert text.replace("\n", "").replace(" ", "") == name.replace(" ", "")  # broken into lines, whole
    else:
        assert text.endswith("…") and text.replace("\n", "").rstrip("…") == name[: len(text.replace("\n", "")) - 1]


def test_a_short_name_is_left_as_it_was():
    (_, fig), = sequence_maps(MapData(torch.rand(1, 1, 50), {"causal": torch.randn(1, 1, 50)}, "ie"))
    label = fig.axes[1].yaxis.label
    assert label.get_text() == "causal" and label.get_fontsize() == 9.0


def test_a_reused_figure_keeps_the_name_fitted():
    d = MapData(torch.rand(2, 1, 50), {"MyOwnGradientTimesInputWithSmoothing_v2": torch.randn(2, 1, 50)}, "ie")
    figures = sequence_maps(d, reuse=True)
    _, first = next(figures)
    canvas = FigureCanvasAgg(first)
    canvas.draw()
    _, again = next(figures)
    assert again is first
    canvas.draw()
    twin = again.axes[1]
    label, panel = twin.yaxis.label.get_window_extent(canvas.get_renderer()), twin.get_window_extent(canvas.get_renderer())
    assert label.height <= panel.height and twin.yaxis.label.get_text().count("\n") == 2


def test_a_name_beyond_three_lines_of_7_pt_is_cut_at_a_word_with_its_spaces_kept():
    name = "my own gradient times input with smoothing and a noise tunnel of twenty samples v2"
    (_, fig), = sequence_maps(MapData(torch.rand(1, 1, 50), {name: torch.randn(1, 1, 50)}, "ie"))
    label = fig.axes[1].yaxis.label
    lines = label.get_text().split("\n")
    assert len(lines) == 3 and label.get_fontsize() == 7.0 and lines[-1].endswith("…")
    assert name.startswith(" ".join(lines).rstrip("…"))  # the words and the spaces between them, as given
