"""map_scale's own limit (no limit given: the Captum comparison grid's columns) is the largest *finite* |value|, as
map_limits' is (35569cf): one NaN pixel made it NaN, and every sample of the column was drawn on matplotlib's fallback
scale of -0.1 to 0.1."""

import math

import torch

from lightning_causal.reporting.comparison import attribution_grid
from lightning_causal.reporting.image_figures import map_scale


def test_map_scale_reads_the_largest_finite_value():
    assert map_scale(torch.tensor([math.nan, -2.0, 1.0])) == ("RdBu_r", -2.0, 2.0)
    assert map_scale(torch.tensor([math.inf, 0.5])) == ("Reds", 0.0, 0.5)
    assert map_scale(torch.tensor([math.nan])) == ("Reds", 0.0, 1.0)  # nothing finite: the scale of 1


def test_a_nan_pixel_of_one_sample_leaves_the_comparison_columns_scale_finite():
    saliency = torch.zeros(2, 1, 2, 2)
    saliency[0, 0] = torch.tensor([[0.5, -3.0], [1.0, 0.0]])
    saliency[1, 0, 0, 0] = math.nan
    fig = attribution_grid(torch.rand(2, 1, 2, 2), {"Saliency": saliency})
    assert fig.axes[1].images[0].get_clim() == (-3.0, 3.0)  # sample 0's map: (nan, nan) before
