"""A map none of whose scores is finite (every score NaN: an audit's failed groups, a method that gave NaN) was drawn
as a grey panel beside a colour bar of 0 to 1 (the scale of a map with no value to scale by), which read as the map's
scale. Its panel now says "no finite values" and shows no colour bar, in the image heatmaps, the frames of a video
and a sequence's heatmap; a map with some finite scores keeps its bar; a kept row is not reused across the two."""

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.reporting.frame_maps import frame_maps
from lightning_causal.reporting.image_figures import heatmap_row
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.sequence_maps import sequence_maps

NAN = float("nan")


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _bars(fig):
    """Whether each map's colour bar is shown, in the order of the maps' images."""
    return [im.colorbar.ax.get_visible() for ax in fig.axes for im in ax.get_images() if im.colorbar is not None]


def test_an_all_nan_heatmap_says_no_finite_values_and_has_no_colour_bar():
    torch.manual_seed(0)
    some = torch.randn(1, 6, 6)
    some[0, 2, 3] = NAN
    fig = heatmap_row(torch.rand(1, 6, 6), {"causal": torch.randn(1, 6, 6), "broken": torch.full((1, 6, 6), NAN),
                                           "one NaN": some})
    FigureCanvasAgg(fig).draw()
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert [t.get_text() for t in panels["broken"].texts] == ["no finite values"]
    assert len(panels["one NaN"].texts) == 0 and len(panels["causal"].texts) == 0
    assert _bars(fig) == [True, False, True]  # beside causal, broken, one NaN: no 0..1 scale of nothing


def test_a_kept_row_of_an_all_nan_map_is_not_reused_for_a_finite_one():
    layout = {}
    x = torch.rand(1, 6, 6)
    first = heatmap_row(x, {"causal": torch.full((1, 6, 6), NAN)}, layout=layout, reuse=True)
    FigureCanvasAgg(first).draw()
    second = heatmap_row(x, {"causal": torch.randn(1, 6, 6)}, layout=layout, reuse=True)
    FigureCanvasAgg(second).draw()
    assert "no finite values" not in _texts(second) and _bars(second) == [True]


def test_frames_and_a_sequence_heatmap_of_no_finite_score_say_so_without_a_bar():
    torch.manual_seed(0)
    video = torch.rand(1, 1, 3, 5, 5)
    (_, fig), = frame_maps(MapData(video, {"causal": torch.full_like(video, NAN)}, "v", max_samples=1))
    assert _texts(fig) == ["no finite values"]
    assert _bars(fig) == [False]
    signal = torch.randn(1, 3, 20)
    (_, fig), = sequence_maps(MapData(signal, {"causal": torch.full_like(signal, NAN)}, "s", max_samples=1), "channels_first")
    assert "no finite values" in _texts(fig) and _bars(fig) == [False]
