"""One colour per Captum method across a CaptumBaseline's cards (newuser12 trial, breast-cancer MLP with
IntegratedGradients, Saliency and DeepLift): the tabular top-features bars drew IntegratedGradients
orange, Saliency green and DeepLift purple, while the deletion and insertion curves of the same audit
drew IntegratedGradients blue, Saliency orange and DeepLift green (matplotlib's default cycle), so orange
was Saliency on one card and IntegratedGradients on the next. The curves now take the bars' colours:
the causal line black, the methods in order after it."""

import pytest
import torch
from matplotlib.colors import to_rgba

pytest.importorskip("matplotlib")

from lightning_causal.reporting.comparison import curves_figure  # noqa: E402
from lightning_causal.reporting.map_data import MapData  # noqa: E402
from lightning_causal.reporting.tabular_maps import tabular_maps  # noqa: E402

METHODS = ["causal", "IntegratedGradients", "Saliency", "DeepLift"]


def _bar_colours():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 5, generator=g)
    maps = {name: torch.randn(16, 5, generator=g) for name in METHODS}
    [(_, fig)] = tabular_maps(MapData(x, maps, "captum_baseline", {"targets": [0] * 8 + [1] * 8}))
    bars = fig.axes[0].containers
    return {c.get_label(): to_rgba(c.patches[0].get_facecolor()) for c in bars}


def _line_colours(names):
    x = [0.0, 0.5, 1.0]
    curve = {"x": x, **{name: [1.0, 0.5 - 0.1 * i, 0.0] for i, name in enumerate(names)}}
    fig = curves_figure({"deletion": curve, "insertion": curve})
    return [{line.get_label().split(" (")[0]: to_rgba(line.get_color()) for line in ax.get_lines()} for ax in fig.axes]


def test_each_method_has_the_colour_of_its_bars_on_the_curves():
    bars = _bar_colours()
    assert list(bars) == METHODS
    assert bars["causal"] == to_rgba("black")
    for lines in _line_colours(METHODS):
        assert lines == bars


def test_curves_without_a_causal_line_draw_no_method_in_the_causal_black():
    lines = _line_colours(["IntegratedGradients", "Saliency"])
    bars = _bar_colours()
    for drawn in lines:
        assert drawn == {"IntegratedGradients": bars["IntegratedGradients"], "Saliency": bars["Saliency"]}
