"""newuser63's trial: CounterfactualAudit on a state-space classifier of 256 steps of 4 features drew each sample's
difference (cf - input) as an image of 256 columns in a cell of about 115 pixels, where imshow draws one column a pixel
and drops the others: a counterfactual whose one change was at step 103 of feature 2 showed an empty difference panel.
The difference of a long sequence is now drawn in bins of steps, each the change of largest magnitude with its sign,
no more bins than half the cell's pixels, on the steps' own axis."""

from __future__ import annotations

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.counterfactual_figures import counterfactual_figure

T = 256


def _panels(step: int, value: float) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.rand(4, 1, 4, T)  # 4 samples, [features, steps] as a sequence's counterfactuals are drawn
    diff = torch.zeros(4, 1, 4, T)
    diff[2, 0, 2, step] = value  # the third sample's only change: feature 2 at one step
    return {"input": x, "counterfactual": x + diff, "difference": diff}


def _difference_cell(fig, column: int):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[8 + column]  # the third row of a 3 x 4 grid
    return ax, ax.get_images()[0], ax.get_window_extent(canvas.get_renderer()).width


def test_a_one_step_change_of_a_long_sequence_is_drawn_at_its_step() -> None:
    labels = ["label 1 → pred 0\n→ cf 1 ✓"] * 4
    fig = counterfactual_figure(_panels(103, -1.0), labels, sequence_axes=("time step", "feature"))
    ax, image, pixels = _difference_cell(fig, 2)
    drawn = torch.as_tensor(image.get_array().data)
    assert 2 * drawn.shape[1] <= pixels  # every drawn column has two pixels or more: none is dropped
    left, right = image.get_extent()[:2]
    size = (right - left) / drawn.shape[1]  # steps a column
    bins = torch.nonzero(drawn)
    assert bins.tolist() == [[2, int((103 + 0.5) // size)]] and float(drawn[2, bins[0, 1]]) == -1.0  # feature 2, its sign
    assert ax.get_xlim() == (-0.5, T - 0.5)  # the axis keeps the steps


def test_a_kept_figure_redrawn_draws_the_new_change() -> None:
    kept: dict = {}
    labels = ["a", "b", "c", "d"]
    first = counterfactual_figure(_panels(103, -1.0), labels, sequence_axes=("time step", "feature"), kept=kept)
    _difference_cell(first, 2)
    again = counterfactual_figure(_panels(200, 1.0), labels, sequence_axes=("time step", "feature"), kept=kept)
    assert again is first
    _, image, _ = _difference_cell(again, 2)
    drawn = torch.as_tensor(image.get_array().data)
    size = (image.get_extent()[1] - image.get_extent()[0]) / drawn.shape[1]
    assert torch.nonzero(drawn).tolist() == [[2, int((200 + 0.5) // size)]] and float(drawn.max()) == 1.0
