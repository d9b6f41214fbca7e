"""Image maps in TensorBoard's image cards (a box of about 400 x 215 pixels): CaptumBaseline with two
methods drew input | causal | IntegratedGradients | Saliency in one row, 800 x 250 pixels for 28 x 28
images and 800 x 156 for a 32 x 128 spectrogram, shown at half size: the panels' titles, the sample's
title and the colour note could not be read. More than two maps are now one card each, input | map
(``maps/sample_<i>/<map>``); input and up to two maps keep one figure (``maps/sample_<i>``)."""

import pytest
import torch

from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.image_maps import MAX_MAPS_PER_FIGURE
from lightning_causal.reporting.map_data import MapData

DPI = 100  # matplotlib's default: the figures are written at their size in inches x 100


def _card_scale(fig) -> float:
    """How much a TensorBoard card (a box of about 400 x 215 CSS pixels) shrinks the figure's image."""
    width, height = fig.get_size_inches() * DPI
    return min(1.0, 400 / width, 215 / height)


def _drawn(fig):
    """The images of the figure's panels (input, then each map), colour bars left out."""
    return [ax.images[0] for ax in fig.axes if ax.images and ax.get_title()]


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (3, 1, 32, 128), (3, 3, 32, 32)])
def test_more_than_two_maps_of_an_image_are_one_readable_card_each(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    causal = torch.randn(shape, generator=g)
    maps = {"causal": causal, "IntegratedGradients": 3 * causal, "Saliency": causal.abs()}
    assert len(maps) > MAX_MAPS_PER_FIGURE
    figures = map_figures(MapData(x, maps, "captum_baseline", {"targets": [1, 0, 1]}, None, 2))
    assert [tag for tag, _ in figures] == [f"maps/sample_{i}/{m}" for i in range(2) for m in maps]
    for (tag, fig), name in zip(figures, list(maps) * 2):
        assert _card_scale(fig) >= 0.7, (tag, fig.get_size_inches())  # was 0.5 for the row of four panels
        assert [ax.get_title() for ax in fig.axes if ax.images and ax.get_title()] == ["input", name]
        assert fig._suptitle.get_text().startswith("captum_baseline, sample "), tag  # the map's panel names it
    # each card draws its own map of its own sample, on the map's scale shared by the samples
    card = dict(figures)["maps/sample_1/IntegratedGradients"]
    _, drawn = _drawn(card)
    plane = (3 * causal[1]).gather(0, (3 * causal[1]).abs().argmax(0, keepdim=True))[0]  # each pixel's strongest channel
    assert torch.allclose(torch.as_tensor(drawn.get_array().data), plane)
    peak = float((3 * causal[:2]).abs().amax(dim=(1, 2, 3)).max()) if shape[1] == 1 else None
    if peak is not None:
        assert drawn.get_clim() == pytest.approx((-peak, peak))
    notes = {tag: [t.get_text() for t in fig.texts if t is not fig._suptitle] for tag, fig in figures}
    assert notes["maps/sample_0/causal"] == ["red: raises the explained class's score, blue: lowers it"]
    assert notes["maps/sample_0/Saliency"] == []  # a size only: no sign to explain


def test_input_and_two_maps_stay_one_figure():
    x = torch.rand(2, 1, 28, 28)
    maps = {"total": torch.rand(2, 1, 28, 28), "first": torch.rand(2, 1, 28, 28)}
    figures = map_figures(MapData(x, maps, "sobol"))
    assert [tag for tag, _ in figures] == ["maps/sample_0", "maps/sample_1"]
    fig = figures[0][1]
    assert [im.axes.get_title() for im in _drawn(fig)] == ["input", "total", "first"] and _card_scale(fig) >= 0.6
