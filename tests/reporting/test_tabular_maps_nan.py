"""Grouped tabular bars (causal beside a Captum method) scale each map by its own largest mean |score|: one NaN score
of one sample (a NaN gradient) made that largest NaN and every bar of the map NaN, none drawn (the fault map_limits had,
35569cf); on one shared scale (Sobol' S and S_T) the axis limit went NaN. The largest is the finite one."""

import math

import torch

from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tabular_maps import tabular_maps


def _bars(maps: dict, **meta) -> tuple[list[float], tuple[float, float]]:
    data = MapData(inputs=torch.zeros(4, 3), maps=maps, audit="a", meta={"targets": [0, 0, 0, 0], **meta})
    (_, fig), = tabular_maps(data)
    ax = fig.axes[0]
    return [float(p.get_height()) for p in ax.patches], ax.get_ylim()


def test_a_nan_score_of_one_sample_leaves_the_maps_other_bars():
    causal = torch.tensor([[1.0, 0.5, 0.1]] * 4)
    ig = causal.clone()
    ig[0, 2] = math.nan  # sample 0, feature 2
    heights, _ = _bars({"causal": causal, "ig": ig})
    assert heights[:3] == [1.0, 0.5, 0.10000000149011612]
    assert heights[3:5] == [1.0, 0.5] and math.isnan(heights[5])  # the NaN feature's bar alone is not drawn


def test_a_nan_score_leaves_the_shared_scale_finite():
    st = torch.tensor([[0.4, 0.2, 0.1]] * 4)
    s = st * 0.5
    s[1, 0] = math.nan  # the first map's: max(nan, 0.4) is nan in Python, max(0.4, nan) 0.4
    _, (low, high) = _bars({"S": s, "ST": st}, shared_map_scale=True)
    assert (low, high) == (0.0, 1.3 * 0.4000000059604645)  # the largest finite mean |score|, S_T's x0


def test_a_feature_whose_mean_is_nan_does_not_take_the_top_bar():
    """largest_first sorted a NaN mean |score| first: feature 0 (one NaN sample) took the top of the chart, drawn
    empty, and pushed the third largest feature out of a top-2 chart."""
    causal = torch.tensor([[0.1, 1.0, 0.5]] * 4)
    causal[2, 0] = math.nan
    data = MapData(inputs=torch.zeros(4, 3), maps={"causal": causal}, audit="a", meta={"targets": [0, 0, 0, 0]})
    (_, fig), = tabular_maps(data, top=2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x2", "x1"]  # barh: bottom up, largest on top


def test_a_feature_whose_mean_is_infinite_does_not_take_the_top_bar():
    """largest_first pushed a NaN mean |score| to the end but not an infinite one (the final read: with one inf the chart
    read feature 0 first, drawn as no bar): every score that is not finite comes last, as _not_finite's note says."""
    causal = torch.tensor([[0.1, 1.0, 0.5]] * 4)
    causal[2, 0] = math.inf
    data = MapData(inputs=torch.zeros(4, 3), maps={"causal": causal}, audit="a", meta={"targets": [0, 0, 0, 0]})
    (_, fig), = tabular_maps(data, top=2)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["x2", "x1"]
