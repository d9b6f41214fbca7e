"""Top-features bars of a tabular model explained at each sample's predicted class (newuser12 trial,
breast cancer: InputEffectAudit with class names): the bars are red where a column's values raise the
predicted class's score on average and blue where they lower it, but the axis said only
'mean |effect| (red: raises the class score)', so the blue bar of 'compactness error' was not
explained on the card. The caption names blue wherever a blue bar is drawn, inside the figure."""

import pytest
import torch
from matplotlib.colors import to_rgba

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from lightning_causal.reporting.map_data import MapData  # noqa: E402
from lightning_causal.reporting.tabular_maps import tabular_maps  # noqa: E402


def _figure(effects):
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    meta = {"targets": [0, 1, 0, 1], "feature_names": ["radius", "texture", "compactness error"]}
    [(_, fig)] = tabular_maps(MapData(x, {"causal": effects}, "input_effect", meta))
    return fig


def _bars_and_label(fig):
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    return dict(zip(names, (to_rgba(p.get_facecolor()) for p in ax.patches))), ax.xaxis.label


def test_the_caption_says_what_a_blue_bar_is():
    effects = torch.tensor([[0.5, 0.2, -0.3]]).repeat(4, 1)  # compactness error lowers the class score
    fig = _figure(effects)
    colours, label = _bars_and_label(fig)
    assert colours["compactness error"] == to_rgba("tab:blue") and colours["radius"] == to_rgba("tab:red")
    text = label.get_text().replace("\n", " ")
    assert "red: raises the class score" in text and "blue: lowers it" in text
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    extent = label.get_window_extent(canvas.get_renderer())
    assert fig.bbox.x0 <= extent.x0 and extent.x1 <= fig.bbox.x1 and fig.bbox.y0 <= extent.y0


def test_red_bars_alone_keep_the_one_line_caption():
    fig = _figure(torch.tensor([[0.5, 0.2, 0.3]]).repeat(4, 1))
    _, label = _bars_and_label(fig)
    assert label.get_text() == "mean |effect| (red: raises the class score)"
