"""A map's colour limit is its largest *finite* |value|: one NaN (or infinite) pixel of one sample made the limit NaN,
and every sample's map was drawn on matplotlib's fallback scale (-0.1 to 0.1), so sample 0, which held no NaN,
differed from its own drawing in 41% of its pixels (review of the figure reuse, 2026-12-05)."""

import math

import torch

from lightning_causal.reporting.map_data import MapData, map_limits


def test_a_nan_or_inf_pixel_leaves_the_limit_at_the_largest_finite_value():
    effect = torch.tensor([[[0.5, -2.0], [1.0, 0.0]], [[math.nan, 0.25], [math.inf, -1.5]]])
    data = MapData(inputs=torch.zeros(2, 2, 2), maps={"causal": effect, "zeros": torch.zeros(2, 2, 2)}, audit="a")
    assert map_limits(data, data.maps) == {"causal": 2.0, "zeros": 1.0}  # an all-0 map keeps its scale of 1
    only_nan = MapData(inputs=torch.zeros(1, 2), maps={"m": torch.full((1, 2), math.nan)}, audit="a")
    assert map_limits(only_nan, only_nan.maps) == {"m": 1.0}
    shared = MapData(inputs=torch.zeros(2, 2, 2), maps={"S": effect, "ST": effect * 0.5}, audit="a",
                     meta={"shared_map_scale": True})
    assert map_limits(shared, shared.maps) == {"S": 2.0, "ST": 2.0}
