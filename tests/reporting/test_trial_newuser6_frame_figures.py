"""Videos ``[N, C, T, H, W]`` (trial newuser6: a Conv3d whose class is the direction a dot moves in).
The image kind draws a volume at its one frame of largest effect, which cannot show a motion; the
chosen kind ``"frames"`` draws every frame (at most 8, evenly spaced): the input's in the first row,
each map's below."""

from __future__ import annotations

import pytest
import torch

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.reporting.figure_kinds import map_figures, skip_reason
from lightning_causal.reporting.frame_maps import MAX_FRAMES
from lightning_causal.reporting.map_data import MapData


def _panel(fig, row, column, columns):
    """The image array of a grid panel (each row ends with its colour bar's axes)."""
    return torch.as_tensor(fig.axes[row * (columns + 1) + column].get_images()[0].get_array().data)


def test_every_frame_of_each_map_is_drawn_below_the_input_frame_it_explains():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 2, 4, 8, 8, generator=g)
    causal = torch.zeros(2, 2, 4, 8, 8)
    for t in range(4):  # the effect moves one pixel right per frame; channel 1 the stronger at frame 2
        causal[:, 0, t, 3, 1 + t] = 1.0 + t
    causal[:, 1, 2, 3, 3] = -5.0
    (tag, fig), _ = map_figures(MapData(x, {"causal": causal}, "input_effect", {"targets": [0, 1]}), "frames")
    assert tag == "maps/sample_0"
    for t in range(4):
        assert torch.allclose(_panel(fig, 0, t, 4), x[0, :, t].mean(0))  # the input's frame, channels averaged
        drawn = _panel(fig, 1, t, 4)
        assert drawn.abs().argmax() == (3 * 8 + 3 if t == 2 else 3 * 8 + 1 + t)
        assert float(drawn.flatten()[drawn.abs().argmax()]) == (-5.0 if t == 2 else 1.0 + t)
    assert [fig.axes[t].get_title() for t in range(4)] == ["t=0", "t=1", "t=2", "t=3"]
    images = fig.axes[5].get_images()  # one colour scale for every frame of the map: symmetric, its largest |value|
    assert images[0].get_clim() == (-5.0, 5.0)


def test_long_videos_draw_evenly_spaced_frames_and_other_shapes_are_refused():
    x = torch.rand(1, 1, 20, 4, 4)
    (_, fig), = map_figures(MapData(x, {"causal": torch.randn(1, 1, 20, 4, 4)}, "a"), "frames")
    titles = [fig.axes[k].get_title() for k in range(MAX_FRAMES)]
    assert titles[0] == "t=0" and titles[-1] == "t=19" and len(set(titles)) == MAX_FRAMES
    assert "[N, C, T, H, W]" in skip_reason("frames", torch.zeros(2, 1, 8, 8))
    assert CausalAuditCallback([InputEffectAudit()], figure_kind="frames")._renderer.figure_kind == "frames"


@pytest.mark.parametrize("methods", [1, 2])
def test_captum_maps_beside_the_causal_one_follow_the_image_kinds_card_split(methods):
    x = torch.rand(1, 1, 3, 4, 4)
    maps = {"causal": torch.randn(1, 1, 3, 4, 4), **{f"M{k}": torch.rand(1, 1, 3, 4, 4) for k in range(methods)}}
    tags = [t for t, _ in map_figures(MapData(x, maps, "cb", {"methods": list(maps)[1:]}), "frames")]
    assert tags == (["maps/sample_0"] if methods == 1 else ["maps/sample_0/causal", "maps/sample_0/compare/M0", "maps/sample_0/compare/M1"])
