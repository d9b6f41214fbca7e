"""mad_anomaly_index when the MAD is 0: the mean absolute deviation with its own consistency constant.

More than half the values tie at the median (suspect_units on a wide ReLU layer whose units the trigger does not
move all score exactly 0), so the MAD is 0 and the scale falls back to the mean absolute deviation. It was multiplied
by 1.4826, the MAD's constant (1 / Φ⁻¹(0.75)); for the mean absolute deviation, E|Z| = √(2/π), so σ is
√(π/2) · mean|v − med| (1.2533, Iglewicz & Hoaglin's modified z-score). With 1.4826 the index was 1.4826 / 1.2533 =
1.18 times too small in σ units, and a unit 3.2 σ out read 2.7, under the default threshold 3.
"""

import math

import torch

from lightning_causal.causal.backdoor.suspects import (
    MAD_CONSISTENCY,
    MEAN_AD_CONSISTENCY,
    mad_anomaly_index,
)


def test_the_fallback_scale_is_the_mean_absolute_deviations_own():
    v = torch.tensor([0.0] * 6 + [1.0, 2.0, 3.0, 10.0], dtype=torch.float64)  # median 0, MAD 0, mean |v| = 1.6
    scale = math.sqrt(math.pi / 2) * 1.6  # 2.0053
    expected = v / scale  # 10 -> 4.9868 (before: 10 / (1.4826 * 1.6) = 4.2155)
    assert torch.allclose(mad_anomaly_index(v, side="high"), expected, rtol=1e-12, atol=0)
    four = mad_anomaly_index(torch.tensor([1.0, 1.0, 1.0, 5.0]), side="high")[3]  # mean |dev| 1
    assert abs(float(four) - 4 / 1.2533141373155) < 1e-5 and float(four) >= 3.0  # before: 2.698, under 3


def test_both_constants_estimate_sigma_for_normal_data():
    z = 2.0 * torch.randn(400_001, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # σ = 2
    dev = (z - z.median()).abs()
    assert abs(MEAN_AD_CONSISTENCY * float(dev.mean()) / 2.0 - 1.0) < 0.01  # 1.4826 here: 1.18
    assert abs(MAD_CONSISTENCY * float(dev.median()) / 2.0 - 1.0) < 0.01
