"""Attribution heatmaps of images as a user sees them in TensorBoard: colour images, many Captum
methods, non-square images, signed and unsigned maps."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.audits.counterfactual import _triptych, split_triptych
from lightning_causal.reporting.comparison import attribution_grid
from lightning_causal.reporting.figure_kinds import MapData, map_figures
from lightning_causal.reporting.figures import counterfactual_figure, heatmap_row

CARD = 380  # pixels: the width TensorBoard fits an image card's picture into


def _boxes(fig):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    return [ax.get_window_extent(renderer) for ax in fig.axes]


def test_causal_beside_five_captum_methods_stays_readable_in_a_card():
    """Input, causal and five methods were one row of seven panels, 1300 x 250 pixels: shrunk into a
    380-pixel card each map was about 35 pixels wide; now rows of at most four panels."""
    g = torch.Generator().manual_seed(0)
    names = ["causal", "IntegratedGradients", "Saliency", "DeepLift", "GradientShap", "FeatureAblation"]
    fig = heatmap_row(torch.rand(3, 32, 32, generator=g), {k: torch.randn(3, 32, 32, generator=g) for k in names}, title="t")
    width, height = fig.get_size_inches() * fig.dpi
    assert width / height <= 2.5
    images = [ax for ax in fig.axes if ax.get_images() and ax.get_title()]  # input and the six maps (not colour bars)
    assert [ax.get_title() for ax in images] == ["input", *names]
    boxes = _boxes(fig)
    shown = [boxes[fig.axes.index(ax)].width * CARD / width for ax in images]
    assert min(shown) >= 50, shown


def test_unsigned_maps_are_drawn_from_zero_and_signed_maps_around_it():
    """Saliency (|gradient|, never negative) was drawn on [-v, v]: half of its colour bar unused."""
    sal, sig = torch.rand(1, 8, 8) + 0.1, torch.randn(1, 8, 8)
    fig = heatmap_row(torch.rand(1, 8, 8), {"causal": sig, "Saliency": sal})
    (_, causal_im), (_, sal_im) = [(ax, ax.get_images()[0]) for ax in fig.axes if ax.get_images() and ax.get_title() in ("causal", "Saliency")]
    lim = float(sig.abs().max())
    assert causal_im.get_clim() == pytest.approx((-lim, lim)) and causal_im.get_cmap().name == "RdBu_r"
    assert sal_im.get_clim() == pytest.approx((0.0, float(sal.max()))) and sal_im.get_cmap().name == "Reds"
    grid = attribution_grid(torch.rand(2, 1, 8, 8), {"causal": torch.randn(2, 1, 8, 8), "Saliency": torch.rand(2, 1, 8, 8)})
    clims = [ax.get_images()[0].get_clim() for ax in grid.axes[:6] if ax.get_images()][1:]
    assert clims[0][0] < 0 and clims[1][0] == 0.0  # causal around 0, Saliency from 0
    assert {ax.get_images()[0].get_interpolation() for ax in grid.axes[:6]} == {"nearest"}  # a 64x64 map was smoothed


def test_one_kind_of_scale_per_map_for_every_sample():
    """A signed map that happens to be non-negative on one sample keeps the diverging scale there."""
    effect = torch.randn(2, 1, 6, 6)
    effect[0] = effect[0].abs()
    figs = dict(map_figures(MapData(torch.rand(2, 1, 6, 6), {"causal": effect}, "ie")))
    kinds = [[im.get_cmap().name for ax in f.axes for im in ax.get_images() if ax.get_title() == "causal"] for f in figs.values()]
    assert kinds == [["RdBu_r"], ["RdBu_r"]]


@pytest.mark.parametrize("shape", [(24, 40), (40, 24)])
def test_non_square_maps_keep_their_aspect_and_their_colour_bars_their_height(shape):
    h, w = shape
    fig = heatmap_row(torch.rand(1, h, w), {"causal": torch.randn(1, h, w), "IG": torch.randn(1, h, w)})
    boxes = _boxes(fig)
    images = [i for i, ax in enumerate(fig.axes) if ax.get_images()]
    bars = [i for i, ax in enumerate(fig.axes) if not ax.get_images()]
    for i in images:
        assert boxes[i].width / boxes[i].height == pytest.approx(w / h, rel=0.03)
    for i, b in zip(images[1:], bars):  # the colour bar beside each map spans the image, not the taller cell
        assert boxes[b].height == pytest.approx(boxes[i].height, rel=0.03)


def test_a_colour_counterfactual_difference_reaches_its_labelled_scale():
    """A counterfactual that adds blue to a red bar: the difference row drew the channels' mean, a
    third of the change, under a colour bar labelled ±max."""
    x = torch.zeros(1, 3, 4, 6)
    x[0, 0, 1:3] = 1.0  # a red bar
    cf = x.clone()
    cf[0, 2, 1:3] = 0.5  # made magenta
    panels = split_triptych(_triptych(x, cf))
    fig = counterfactual_figure(panels, ["label 2 → pred 0\n→ cf 2 ✓"])
    drawn = torch.as_tensor(fig.axes[2].get_images()[0].get_array())
    assert float(drawn.max()) == pytest.approx(1.0) and float(drawn.min()) == 0.0


def test_per_pixel_colour_maps_use_their_whole_colour_scale():
    """A per-element RGB attribution (IntegratedGradients without groups) was drawn as the channels'
    mean on a scale set by the largest single channel: at most a third of the scale (0.33 measured),
    the map nearly white."""
    g = torch.Generator().manual_seed(0)
    ig = torch.zeros(2, 3, 8, 8)
    ig[:, 0] = torch.randn(2, 8, 8, generator=g)  # the red channel carries the attribution
    figs = dict(map_figures(MapData(torch.rand(2, 3, 8, 8, generator=g), {"IG": ig}, "cb")))
    drawn = [(torch.as_tensor(im.get_array()).abs().max(), im.get_clim()[1]) for f in figs.values()
             for ax in f.axes if ax.get_title() == "IG" for im in ax.get_images()]
    assert max(float(v) / lim for v, lim in drawn) == pytest.approx(1.0)
    grid = attribution_grid(torch.rand(2, 3, 8, 8, generator=g), {"IG": ig})
    shown = [ax.get_images()[0] for ax in grid.axes[:4] if ax.get_images() and ax.get_images()[0].get_array().ndim == 2]
    assert max(float(torch.as_tensor(im.get_array()).abs().max()) / im.get_clim()[1] for im in shown) == pytest.approx(1.0)


def test_the_comparison_grid_colour_bars_overlap_no_map():
    """attribution_grid's column colour bars (and their tick labels) were drawn over the next
    column's maps."""
    g = torch.Generator().manual_seed(0)
    maps = {k: 0.01 * torch.randn(2, 3, 8, 8, generator=g) for k in ("causal", "IntegratedGradients", "DeepLift")}  # ticks like −0.02
    fig = attribution_grid(torch.rand(2, 3, 8, 8, generator=g), maps)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    images = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_images() and ax.get_label() != "<colorbar>"]
    bars = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(images) == 8 and len(bars) == 3
    assert not any(b.overlaps(i) for b in bars for i in images)
