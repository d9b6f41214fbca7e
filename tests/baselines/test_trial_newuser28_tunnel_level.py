"""CaptumBaseline's NoiseTunnel at its default noise level (newuser28, a Captum maintainer's check).

The default σ of a tunnel is 15% of the explained inputs' range, and it was taken from whatever the explainer was
given: the probe for the maps, but x + ε for the stability metric (and the repeated rows of the reference
metrics). The noisy copy has a wider range, so the method compared with itself ran at another noise level
(a quarter higher on digits in [0, 1]): the stability of NoiseTunnel-Saliency read 0.9821 where the same audit
with that σ given read 0.9844. Every input is explained at the probe's level now.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits.base import Probe


def test_the_stability_of_a_tunnel_at_its_default_level_is_that_of_the_probes_level_given() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3)).double().eval()
    x = torch.rand(12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    level = 0.15 * float(x.max() - x.min())
    runs = [CaptumBaseline([("NoiseTunnel(Saliency)", options)], seed=3, noise_sigma=0.3).run(model, Probe(x))
            for options in ({}, {"stdevs": level})]
    key = "compare/NoiseTunnel-Saliency/stability"
    assert runs[0].scalars[key] == runs[1].scalars[key]
    torch.testing.assert_close(runs[0].maps["NoiseTunnel-Saliency"], runs[1].maps["NoiseTunnel-Saliency"], rtol=0, atol=0)
    assert 0 < runs[0].scalars[key] < 1
