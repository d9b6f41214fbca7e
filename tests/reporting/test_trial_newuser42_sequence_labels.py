"""Two label faults of the sequence heatmaps found in the newuser42 trial (a features-last sequence [N, 8, 8] with
CaptumBaseline: /tmp/newuser42/png_st). The map panel's label, the map's name along the panel's height, was cut to 12
characters: 'IntegratedG…\\nfeature'; the name now stands whole above its panel (the label says 'feature'). And the rows'
tick labels 0-7 of 8 features overlapped on panels of about 55 pixels: as many rows are labelled now (0, step, ...)
as the panel's drawn height holds, 1.25 font sizes apart."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


def _figures(features: int, steps: int) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, steps, features, generator=g)
    maps = {"causal": torch.randn(1, steps, features, generator=g),
            "IntegratedGradients": torch.randn(1, steps, features, generator=g)}
    r = AuditResult("captum_baseline", maps=maps, meta={"targets": [2]})
    figs = TensorBoardRenderer(figure_kind="sequence_features_last").figures([r], x)
    return {tag.rsplit("/", 1)[-1]: fig for tag, fig in figs.items() if "/maps/" in tag}


def test_the_map_panel_names_the_captum_method_whole():
    fig = _figures(8, 8)["IntegratedGradients"]
    heat = fig.axes[1]
    assert heat.get_title(loc="left") == "IntegratedGradients" and heat.get_ylabel() == "feature"
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    [title] = heat.findobj(lambda a: isinstance(a, Text) and a.get_text() == "IntegratedGradients")
    box = title.get_window_extent(renderer)
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width  # drawn whole inside the figure


@pytest.mark.parametrize("features, steps", [(8, 8), (12, 30), (40, 30)])
def test_the_rows_tick_labels_do_not_overlap(features, steps):
    for fig in _figures(features, steps).values():
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        for ax in fig.axes[:2]:  # the input's heatmap and the map's
            labels = [t for t in ax.get_yticklabels() if t.get_visible() and t.get_text()]
            assert len(labels) >= min(features, 4), [t.get_text() for t in labels]  # rows still labelled
            boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.y0)
            gaps = [upper.y0 - lower.y1 for lower, upper in zip(boxes, boxes[1:])]
            assert min(gaps) >= 0, (features, ax.get_ylabel(), gaps)  # before: -4.7 px for 8 features
