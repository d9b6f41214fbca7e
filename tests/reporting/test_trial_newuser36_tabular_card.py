"""newuser36: the top-feature bars of one map (InputEffectAudit on a 60-column table) fit a TensorBoard card.

Eight bars under a two-line title were a 520 x 346 figure, shown at 0.62 in a card (a box of about 400 x 215); rows
of 0.22 in: 520 x 306, at 0.70, the row labels apart and the three-line caption inside the figure.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tabular_maps import tabular_maps


def test_eight_bars_of_a_fixed_output_fit_a_card_with_labels_apart():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 60, generator=g)
    effect = x * torch.linspace(2.0, 0.1, 60)  # one output explained for every sample: the three-line caption
    names = [f"credit_feature_{i:02d}_last_12_months" for i in range(60)]
    data = MapData(x, {"causal": effect}, "input_effect", {"feature_names": names, "outputs": 1})
    [(_, fig)] = tabular_maps(data)
    width, height = fig.get_size_inches() * fig.dpi
    assert min(400 / width, 215 / height) >= 0.66, (width, height)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    ax = fig.axes[0]
    boxes = sorted((t.get_window_extent(renderer) for t in ax.get_yticklabels()), key=lambda b: b.y0)
    assert len(boxes) == 8 and all(low.y1 < high.y0 for low, high in zip(boxes, boxes[1:]))
    caption = ax.xaxis.label.get_window_extent(renderer)
    assert ax.xaxis.label.get_text().count("\n") == 2 and caption.y0 >= 0  # inside the figure
    assert ax.get_window_extent(renderer).y1 < fig._suptitle.get_window_extent(renderer).y0
