"""Trial "edge": the heatmap of a narrow sample (a [2, 1] map: two channels of a one-step sequence).
The note below the maps ("red: raises the explained class's score, blue: lowers it") was one line
wider than the figure and cut at both edges in TensorBoard; it is now wrapped to the figure's width."""

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.figures import heatmap_row

_NOTE = "red: raises the explained class's score, blue: lowers it"


@pytest.mark.parametrize("shape", [(1, 2, 1), (1, 8, 8), (1, 1, 40)], ids=["narrow", "square", "wide"])
def test_the_note_fits_inside_the_figure(shape):
    sample = torch.rand(shape)
    fig = heatmap_row(sample, {"causal": torch.randn(shape)}, title="explains class 2", note=_NOTE)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer, box = canvas.get_renderer(), fig.bbox
    text = next(t for t in fig.texts if "raises" in t.get_text())
    extent = text.get_window_extent(renderer)
    assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1 and box.y0 - 1 <= extent.y0  # before: cut on the narrow map
    assert text.get_text().replace("\n", " ") == _NOTE
