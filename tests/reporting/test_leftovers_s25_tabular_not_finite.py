"""Tabular bars of a map one of whose scores is NaN or infinite (a NaN gradient of one sample): that feature's mean
|score| is not finite, drawn as no bar, and nothing said so (the token strips say "2 not finite, grey"); the first
map's such feature also ranks last, out of a top-k chart, though its other samples' scores may be the largest. The
caption (one map) or a line under the bars (several) now says how many scores are not finite and on which features;
an infinite mean is no bar either, without matplotlib's RuntimeWarning at every draw."""

import io
import math
import warnings

import torch

from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tabular_maps import tabular_maps

BASE = torch.tensor([[1.0, 0.5, 0.25, 0.125, 0.0625]] * 4)


def _axes(maps: dict, top: int = 8, names: list[str] | None = None):
    meta = {"targets": [0] * 4, **({"feature_names": names} if names else {})}
    (_, fig), = tabular_maps(MapData(inputs=torch.zeros(4, 5), maps=maps, audit="a", meta=meta), top=top)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an infinite bar: 'invalid value encountered in dot'
        fig.savefig(io.BytesIO(), format="png")
    return fig.axes[0]


def test_one_map_says_its_scores_that_are_not_finite_in_the_caption():
    causal = BASE.clone()
    causal[2, 0] = math.nan  # the largest feature, ranked last by its NaN mean: out of a top-3 chart
    ax = _axes({"causal": causal}, top=3)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x3", "x2", "x1"]
    assert ax.get_xlabel().split("\n")[-1] == "1 of 20 scores is not finite (NaN/inf): no bar for x0"


def test_several_maps_say_each_maps_scores_that_are_not_finite_under_the_bars():
    ig = BASE.clone()
    ig[0, 1], ig[1, 1], ig[3, 2] = math.nan, math.inf, -math.inf
    ax = _axes({"causal": BASE, "ig": ig})
    assert ax.get_xlabel() == "ig: 3 of 20 scores are not finite (NaN/inf): no bar for x1, x2"
    heights = [p.get_height() for p in ax.patches]
    assert heights[:5] == [1.0, 0.5, 0.25, 0.125, 0.0625] and math.isnan(heights[6]) and math.isnan(heights[7])


def test_long_names_keep_the_note_under_the_caption_and_name_at_most_three_features():
    causal = BASE.clone()
    causal[0, :4] = math.inf
    names = [f"feature number {i}" for i in range(5)]
    ax = _axes({"causal": causal, "ig": BASE}, names=names)
    lines = ax.get_xlabel().split("\n")
    assert lines[0] == "mean |score| / largest"
    assert " ".join(lines[1:]) == ("causal: 4 of 20 scores are not finite (NaN/inf): no bar for feature number 0, feature number 1, "
                                   "feature number 2 and 1 more")


def test_finite_maps_say_nothing_more():
    assert "not finite" not in _axes({"causal": BASE}).get_xlabel()
    assert _axes({"causal": BASE, "ig": BASE * 2}).get_xlabel() == ""
