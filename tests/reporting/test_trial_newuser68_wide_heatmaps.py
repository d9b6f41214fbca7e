"""newuser68's trial: a log-mel spectrogram of 64 bins x 400 frames drawn as a heat map.

Kept to scale beside the input, each panel of ``heatmap_row`` was 1.45 inches along its longer side: 64 x 400 took
about 145 x 23 pixels, three frequency bins a pixel, and no band could be read. An image at least ``WIDE_RATIO`` times
as wide as high is now drawn one panel a row, stretched across the card, the input lined up with the maps.
"""

from __future__ import annotations

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.image_figures import heatmap_row


def _panels(fig):
    FigureCanvasAgg(fig).draw()
    return [ax.get_window_extent() for ax in fig.axes if ax.get_images() and ax.get_title()]


def _card_scale(fig) -> float:
    """How much a TensorBoard image card (about 400 x 215 pixels) shrinks the figure (as test_trial_tbcards_image_cards)."""
    width, height = fig.get_size_inches() * fig.dpi
    return min(1.0, 400 / width, 215 / height)


def test_a_wide_spectrogram_gets_a_pixel_per_bin_and_the_input_lines_up_with_the_map():
    g = torch.Generator().manual_seed(0)
    fig = heatmap_row(torch.randn(1, 64, 400, generator=g), {"effect": torch.randn(1, 64, 400, generator=g)},
                      title="explains class 2", note="red: raises the explained class's score", origin="lower")
    panels = _panels(fig)
    assert len(panels) == 2
    for box in panels:
        assert box.height >= 64 and box.width >= 350  # a pixel a bin or more (was 23 pixels), most of the card across
    assert abs(panels[0].x0 - panels[1].x0) < 1 and abs(panels[0].x1 - panels[1].x1) < 1  # the frames line up
    assert panels[0].y0 > panels[1].y0  # one panel a row, the input on top
    assert _card_scale(fig) >= 0.7


def test_three_panels_of_a_wide_spectrogram_stay_one_readable_card():
    g = torch.Generator().manual_seed(1)
    fig = heatmap_row(torch.randn(1, 64, 400, generator=g), {"total": torch.rand(1, 64, 400, generator=g),
                                                             "first": torch.rand(1, 64, 400, generator=g)}, title="sobol")
    panels = _panels(fig)
    assert len(panels) == 3 and all(box.height >= 40 and box.width >= 350 for box in panels)
    assert panels[0].y0 > panels[1].y0 > panels[2].y0 and _card_scale(fig) >= 0.7


def test_a_square_image_keeps_its_aspect_beside_its_maps():
    fig = heatmap_row(torch.rand(1, 28, 28), {"causal": torch.randn(1, 28, 28)})
    panels = _panels(fig)
    assert abs(panels[0].width - panels[0].height) < 1 and panels[1].x0 > panels[0].x1  # side by side
