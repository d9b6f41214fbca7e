"""``image_origin="lower"`` under the ``"frames"`` kind (carried fault): the image kind drew a spectrogram's row 0 at
the bottom, but a video's frames (each an image, frames of spectrograms) were drawn with row 0 at the top whatever
was asked; every frame of the input and of each map now follows ``image_origin``, as do that probe's counterfactuals."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits import AuditResult
from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


def _row0_below_last_row(ax) -> bool:
    """Whether row 0 of the image on ``ax`` lies below its last row on the drawn figure (display y grows upwards)."""
    h = ax.get_images()[0].get_array().shape[0]
    y0 = ax.transData.transform((0.0, 0.0))[1]
    y_last = ax.transData.transform((0.0, h - 1.0))[1]
    return y0 < y_last


@pytest.mark.parametrize("origin", ["upper", "lower"])
def test_every_frame_of_the_input_and_each_map_is_drawn_with_row_0_at_the_origin(origin):
    x = torch.rand(1, 1, 3, 4, 5)
    data = MapData(x, {"causal": torch.randn(1, 1, 3, 4, 5)}, "input_effect", image_origin=origin)
    (_, fig), = map_figures(data, "frames")
    fig.canvas.draw()
    frames = [ax for ax in fig.axes if ax.get_images()]  # 3 input frames, 3 map frames (colour bars hold none)
    assert len(frames) == 6
    assert all(_row0_below_last_row(ax) == (origin == "lower") for ax in frames)


def test_the_renderer_gives_its_image_origin_to_the_frames_kind_only_among_the_non_image_kinds():
    x = torch.rand(2, 1, 3, 4, 4)
    r = AuditResult("input_effect", maps={"causal": torch.randn(2, 1, 3, 4, 4)})
    figs = TensorBoardRenderer(max_samples=1, figure_kind="frames", image_origin="lower").figures([r], x)
    fig = figs["causal/input_effect/maps/sample_0"]
    fig.canvas.draw()
    assert all(_row0_below_last_row(ax) for ax in fig.axes if ax.get_images())
    assert TensorBoardRenderer(figure_kind="frames", image_origin="lower")._origin("frames") == "lower"
    assert TensorBoardRenderer(figure_kind="sequence", image_origin="lower")._origin("sequence") == "upper"
