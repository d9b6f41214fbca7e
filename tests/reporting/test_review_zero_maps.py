"""A gradient method on a model whose gradient is 0 (torch.round of its activations) gives maps of 0 everywhere.
The figures drew them as if data: the top-features chart listed the method in its legend with no bars, the image
panel was blank under a 0-1 colour bar, and the deletion/insertion lines (ties ranked by group id: the groups in
index order) looked like a ranking's. Each now says so in its panel or legend; a map with any non-zero value is
drawn as before."""

from __future__ import annotations

import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.figure_kinds import MapData, map_figures
from lightning_causal.reporting.image_figures import heatmap_row
from lightning_causal.reporting.tensorboard import _curve_figure

G = torch.Generator().manual_seed(0)


def _texts(ax) -> list[str]:  # noqa: ANN001
    return [t.get_text() for t in ax.texts]


def test_an_image_map_of_zeros_says_so_in_its_panel():
    fig = heatmap_row(torch.rand(1, 8, 8, generator=G), {"causal": torch.randn(1, 8, 8, generator=G),
                                                          "Saliency": torch.zeros(1, 8, 8)})
    causal, saliency = fig.axes[1], fig.axes[2]
    assert _texts(saliency) == ["0 everywhere"] and _texts(causal) == []
    bar = fig.axes[-1]  # Saliency's colour bar: one tick, at 0 (it read 0 to 1)
    assert [float(t) for t in bar.get_yticks()] == [0.0]


def test_the_top_features_legend_names_a_map_of_zeros():
    x = torch.randn(6, 5, generator=G)
    maps = {"causal": torch.randn(6, 5, generator=G), "Saliency": torch.zeros(6, 5), "FeatureAblation": torch.randn(6, 5, generator=G)}
    [(_, fig)] = map_figures(MapData(x, maps, "captum_baseline", {"targets": [0, 1, 0, 1, 0, 1]}))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["causal", "Saliency (all 0)", "FeatureAblation"]


def test_a_curve_of_a_map_of_zeros_says_it_removes_the_groups_in_index_order():
    result = AuditResult("captum_baseline", maps={"causal": torch.randn(4, 3, generator=G), "Saliency": torch.zeros(4, 3)})
    curve = {"x": [0.0, 0.5, 1.0], "causal": [1.0, 0.2, 0.0], "Saliency": [1.0, 0.6, 0.0]}
    legend = _curve_figure(result, "deletion", curve).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["causal (AUC 0.35)", "Saliency (all 0: index order, AUC 0.55)"]


def _figure_texts(fig) -> list[str]:  # noqa: ANN001
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_a_sequence_map_of_zeros_says_so_as_bars_and_as_a_heatmap():
    for channels in (1, 3):  # one channel: the map as bars beside the input's line; several: a heatmap
        x = torch.randn(2, channels, 30, generator=G)
        maps = {"causal": torch.randn(2, channels, 30, generator=G), "Saliency": torch.zeros(2, channels, 30)}
        figures = map_figures(MapData(x, maps, "captum_baseline", {"targets": [0, 1]}, max_samples=1))
        said = {tag: _figure_texts(fig) for tag, fig in figures}
        assert said == {"maps/sample_0/causal": [], "maps/sample_0/Saliency": ["0 everywhere"]}, channels


def test_a_frames_and_a_points_map_of_zeros_say_so():
    frames = torch.rand(1, 1, 3, 4, 5, generator=G)  # a clip [N, C, T, H, W]
    [(_, fig)] = map_figures(MapData(frames, {"causal": torch.randn(1, 1, 3, 4, 5, generator=G),
                                              "Saliency": torch.zeros(1, 1, 3, 4, 5)}, "captum_baseline"), "frames")
    assert _figure_texts(fig) == ["0 everywhere"]
    assert fig.axes[-1].get_yticks().tolist() == [0.0]  # the Saliency row's colour bar (the last)
    for dims in (2, 3):  # a plane, and the 3-D axes whose text takes (x, y, z, s)
        cloud = torch.randn(1, 20, dims, generator=G)
        [(_, fig)] = map_figures(MapData(cloud, {"causal": torch.randn(1, 20, dims, generator=G),
                                                 "Saliency": torch.zeros(1, 20, dims)}, "captum_baseline"), "points")
        assert _figure_texts(fig) == ["0 everywhere"], dims


def test_the_top_features_bars_of_one_map_of_zeros_say_so_in_the_panel():
    x = torch.randn(6, 5, generator=G)
    for meta in ({"targets": [0, 1, 0, 1, 0, 1]}, {"outputs": 1}):  # colour by mean sign, and by column direction
        [(_, fig)] = map_figures(MapData(x, {"causal": torch.zeros(6, 5)}, "causal_attribution", meta))
        ax = fig.axes[0]
        assert _texts(ax) == ["0 everywhere"] and ax.get_xlim() == (0.0, 1.0), meta  # it was -0.055 to 0.055, blank
        assert ax.get_xlabel() == "mean |effect|", meta  # no red/blue key for bars that are not drawn
        labels = [t.get_text() for t in ax.get_yticklabels()][::-1]  # top to bottom
        assert labels == ["x0", "x1", "x2", "x3", "x4"], labels  # ties in index order, as the docstring says (topk: 2, 4, 3, 0, 1)
    [(_, fig)] = map_figures(MapData(x, {"sobol": torch.zeros(1, 5)}, "sobol"))  # a global map of 0: its caption stays
    assert _texts(fig.axes[0]) == ["0 everywhere"] and fig.axes[0].get_xlabel() == "value over the whole probe"
    [(_, fig)] = map_figures(MapData(x, {"causal": torch.randn(6, 5, generator=G)}, "causal_attribution", {"outputs": 1}))
    assert _texts(fig.axes[0]) == []  # a map with values: no note
