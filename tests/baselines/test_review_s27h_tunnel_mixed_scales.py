"""NoiseTunnel's default noise level on a table whose columns are on different scales.

Captum's NoiseTunnel takes one noise level per input tensor, and the default one is 15% of the range of all the
probe's values (SmoothGrad's, Smilkov et al. 2017): beside a column of range ~6000 a column of range ~6 got noise of
sd ~900, 150 times its own range, so NoiseTunnel-Saliency averaged gradients far from every sample on that column,
silently (the stability noise became each column's own in 6fb06740; Captum has no such level). It is said now, naming
the column and what to do; a level given, a table of like scales, and images (one unit for every pixel) are not.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe
from lightning_causal.baselines.captum_methods import attribute, tunnel_stdevs

# column 0 in [-3, 3] (range 6), column 1 in [-3000, 3000] (range 6000): the default level 0.15 * 6000 = 900
_X = torch.tensor([[-3.0, 3000.0], [3.0, -3000.0], [0.0, 0.0], [1.0, 1000.0]])
_MODEL = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))


def test_the_default_level_on_a_table_of_mixed_scales_is_told():
    with pytest.warns(UserWarning, match=r"stdevs=900, .*: 150 times the range of column 0 \(6; .* to 6000\), .*standardise the columns"):
        assert tunnel_stdevs(_X, None) == pytest.approx(900.0)
    with pytest.warns(UserWarning, match=r"150 times the range of column 0"):
        CaptumBaseline(("NoiseTunnel(Saliency)",)).run(_MODEL, Probe(_X))
    with pytest.warns(UserWarning, match=r"150 times the range of column 0"):
        attribute(_MODEL, _X, "NoiseTunnel(Saliency)", target=0)


def test_a_level_given_a_table_of_like_scales_and_images_are_not_told():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tunnel_stdevs(_X, 2.0) == 2.0
        assert tunnel_stdevs(_X / torch.tensor([1.0, 1000.0]), None) == pytest.approx(0.9)  # ranges 6 and 6
        image = torch.zeros(4, 1, 8, 8)
        image[:, 0, 2:6, 2:6] = torch.rand(4, 4, 4)
        image[1, 0, 0, 0] = 0.001  # a faint pixel of one sample: images share one unit, nothing told
        tunnel_stdevs(image, None)
