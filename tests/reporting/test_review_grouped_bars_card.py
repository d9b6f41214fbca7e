"""Review of the change (git diff 2d59a26), newuser36's leftover: the grouped top-feature bars of CaptumBaseline (causal
beside each method) under long feature names slanted the names under vertical bars: a 572 x 340 figure that a
TensorBoard card (a box of about 400 x 215 pixels) showed at 0.63, the bars squeezed into about 100 pixels under the
legend. Long names now sit beside horizontal groups, first feature on top, the legend above the bars."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tabular_maps import tabular_maps

NAMES = ["credit_utilisation_ratio_last_12_months", "number_of_late_payments_over_30_days"] + [
    f"behavioural_score_component_{i:02d}_normalised" for i in range(10)]


@pytest.mark.parametrize("methods", [1, 3])
def test_long_names_beside_grouped_bars_fit_a_card(methods):
    d = len(NAMES)
    x = torch.randn(6, d, generator=torch.Generator().manual_seed(0))
    rank = torch.arange(d, 0, -1, dtype=torch.float)  # causal ranks the columns in their order
    maps = {"causal": rank.repeat(6, 1)} | {f"M{i}": (rank.flip(0) * (i + 1)).repeat(6, 1) for i in range(methods)}
    [(_, fig)] = tabular_maps(MapData(x, maps, "captum_baseline", {"feature_names": NAMES, "targets": [0, 1] * 3}))
    width, height = fig.get_size_inches() * fig.dpi
    assert min(400 / width, 215 / height) >= 0.66, (width, height)
    [ax] = fig.axes
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    ticks = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])  # top first
    assert [t.get_text() for t in ticks] == ["credit_utilisation_rati…", "number_of_late_payments…"] + [
        f"behavioura…{i:02d}_normalised" for i in range(6)]  # causal's order, first on top, not slanted
    assert {t.get_rotation() for t in ticks} == {0.0}
    boxes = [t.get_window_extent(renderer) for t in ticks]
    assert all(low.y1 < high.y0 for high, low in zip(boxes, boxes[1:]))  # names apart
    causal = ax.patches[:8]  # the first series: causal
    assert [p.get_width() for p in causal] == pytest.approx([(d - j) / d for j in range(8)])  # relative to its largest
    assert causal[0].get_y() > causal[1].get_y()  # the first feature on top
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.y0 >= ax.get_window_extent(renderer).y1 - 1  # above the bars, not over them
    assert legend.y1 < fig._suptitle.get_window_extent(renderer).y0 and legend.x1 <= width  # under the title, inside
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(maps)
