"""Review of 515b9fd6: the counterfactual difference was binned only along the steps of a sequence stretched to its
cell, so a difference of more rows or columns than its cell has pixels and kept to scale was still drawn a row or a
column a pixel, the others dropped: a features-last sequence of 256 steps of 64 features ([64, 256] drawn, 112 x 28 px)
or a 256 x 256 image (106 px) showed an empty panel for a one-element change. Rows and columns are now binned alike,
each bin the change of largest magnitude with its sign; a small image (28 x 28) is drawn as it is."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.counterfactual_figures import counterfactual_figure


def _figure(h: int, w: int, at: tuple[int, int], value: float, kept: dict | None = None):
    x = torch.full((2, 1, h, w), 0.5)
    diff = torch.zeros(2, 1, h, w)
    diff[0, 0, at[0], at[1]] = value
    return counterfactual_figure({"input": x, "counterfactual": x + diff, "difference": diff}, ["a", "b"],
                                 sequence_axes=("time step", "feature"), kept=kept)


def _drawn(fig, h: int, w: int):
    """The first column's difference as drawn, the bin of each axis that covers element ``at``, and its size in px."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[4]  # the difference of the first column, in a 3 x 2 grid
    drawn = torch.as_tensor(ax.get_images()[0].get_array().data)
    box = ax.get_window_extent(canvas.get_renderer())
    assert ax.get_xlim() == (-0.5, w - 0.5) and sorted(ax.get_ylim()) == [-0.5, h - 0.5]  # the elements' own axes
    return drawn, box.height / drawn.shape[0], box.width / drawn.shape[1]


@pytest.mark.parametrize(("h", "w", "at"), [(64, 256, (20, 103)), (64, 256, (63, 255)), (256, 256, (100, 3)),
                                            (4, 256, (2, 103))])
def test_a_one_element_change_is_drawn_in_the_bins_over_it(h: int, w: int, at: tuple[int, int]) -> None:
    drawn, row_px, col_px = _drawn(_figure(h, w, at, -0.5), h, w)
    assert row_px >= 2 and col_px >= 2  # every bin two pixels or more: none dropped
    rows, cols = drawn.shape
    # the element lies in the bins whose span covers its centre (equal bins over the axis, by hand)
    assert torch.nonzero(drawn).tolist() == [[int((at[0] + 0.5) * rows // h), int((at[1] + 0.5) * cols // w)]]
    assert float(drawn.min()) == -0.5


def test_a_small_image_is_drawn_as_it_is_and_a_kept_figure_bins_as_built() -> None:
    drawn, _, _ = _drawn(_figure(28, 28, (3, 5), 0.25), 28, 28)
    assert drawn.shape == (28, 28) and torch.nonzero(drawn).tolist() == [[3, 5]]
    kept: dict = {}
    first = _figure(64, 256, (20, 103), 1.0, kept)
    shape = _drawn(first, 64, 256)[0].shape
    again = _figure(64, 256, (40, 200), -1.0, kept)
    assert again is first
    drawn, _, _ = _drawn(again, 64, 256)
    assert drawn.shape == shape and torch.nonzero(drawn).tolist() == [[int(40.5 * shape[0] // 64), int(200.5 * shape[1] // 256)]]
    assert float(drawn.min()) == -1.0
