"""A volume's map is drawn at the depth slice of largest mean |score|: one NaN pixel made its slice's mean NaN, which
argmax takes for the largest, so the NaN's slice was drawn and titled 'largest mean |causal|' while the effect lay in
another (the NaN fault of map_limits, 35569cf, in the slice choice)."""

import math

import torch

from lightning_causal.reporting.image_maps import image_maps
from lightning_causal.reporting.map_data import MapData


def test_a_nan_pixel_does_not_choose_the_drawn_slice():
    effect = torch.zeros(1, 1, 3, 2, 2)
    effect[0, 0, 0, 0, 0] = math.nan  # slice 0: one NaN pixel, no effect
    effect[0, 0, 2] = 1.0  # slice 2: the effect
    (_, fig), = image_maps(MapData(inputs=torch.rand(1, 1, 3, 2, 2), maps={"causal": effect}, audit="vol"))
    assert "depth slice 2 of 0–2" in fig.get_suptitle()
