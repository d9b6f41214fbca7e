"""Review of 515b9fd6: the counterfactual difference of a long sequence, drawn in bins of whole steps from step 0,
left the last steps of a length the bins do not divide in a partial bin that the steps' axis cut off: of 256 steps in
bins of 5, step 255 was a bin drawn on 254.5-259.5 of an axis ending at 255.5, 0.4 px wide, so that a counterfactual
changing only the last step showed an empty panel. Equal bins now span the steps' axis, each holding the steps whose
centre it covers, with the change of largest magnitude and its sign (hand values of a ramp, before and after)."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.counterfactual_figures import counterfactual_figure

T = 256


def _drawn(diff: torch.Tensor) -> tuple[torch.Tensor, tuple[float, float], tuple[float, float], float]:
    """The first column's difference as drawn: its bins [F, B], their extent along the steps, the axis's limits and
    its width in pixels."""
    x = torch.full((2, 1, 4, T), 0.5)
    fig = counterfactual_figure({"input": x, "counterfactual": x + diff, "difference": diff}, ["a", "b"],
                                sequence_axes=("time step", "feature"))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[4]  # the difference of the first column, in a 3 x 2 grid
    image = ax.get_images()[0]
    left, right = image.get_extent()[:2]
    return (torch.as_tensor(image.get_array().data), (left, right), ax.get_xlim(),
            ax.get_window_extent(canvas.get_renderer()).width)


@pytest.mark.parametrize("step", [255, 254, 0, 103])
def test_a_change_at_any_step_is_drawn_two_pixels_wide_over_its_step(step: int) -> None:
    diff = torch.zeros(2, 1, 4, T)
    diff[0, 0, 3, step] = 0.5
    drawn, (left, right), (low, high), pixels = _drawn(diff)
    (feature, b), = torch.nonzero(drawn).tolist()
    assert feature == 3 and float(drawn[feature, b]) == 0.5
    width = (right - left) / drawn.shape[1]  # steps a bin
    start, end = max(left + b * width, low), min(left + (b + 1) * width, high)  # the bin's part inside the axis
    assert start <= step <= end  # over the step's centre
    assert (end - start) / (high - low) * pixels >= 2  # two pixels or more of it shown


def test_each_bin_keeps_its_largest_change_with_its_sign() -> None:
    diff = torch.zeros(2, 1, 4, T)
    diff[0, 0, 0] = torch.linspace(-1.0, 1.0, T)  # step i: -1 + 2i/255
    diff[0, 0, 1, 10], diff[0, 0, 1, 11] = 0.3, -0.7  # one bin: the -0.7
    drawn, (left, right), _, _ = _drawn(diff)
    bins = drawn.shape[1]
    of_step = [int((i - left) * bins // (right - left)) for i in range(T)]  # the bin drawn over step i's centre
    for b in range(bins):
        steps = [i for i in range(T) if of_step[i] == b]
        edge = steps[0] if b < bins / 2 else steps[-1]  # the ramp's largest |change| at the bin's end nearer an edge
        assert float(drawn[0, b]) == pytest.approx(-1.0 + 2.0 * edge / 255, abs=1e-6)
    assert float(drawn[1, of_step[10]]) == pytest.approx(-0.7)
