"""CaptumBaseline runs each NoiseTunnel method once more without the tunnel (2bb38d55: to tell a map the noise flattened),
and that run's own warnings reached the user as warnings of a method never asked for: NoiseTunnel(GuidedBackprop) on a
model of functional relus gave "Captum's GuidedBackprop overrides the backward pass of nn.ReLU modules only and _F
holds none ..." beside the same warning of NoiseTunnel-GuidedBackprop. The check's run is silent; the tunnel's own
warning is still given."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe


class _F(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_the_run_without_the_tunnel_warns_of_nothing():
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = CaptumBaseline(("NoiseTunnel(GuidedBackprop)",)).run(_F(), Probe(x))
    relu = [str(w.message) for w in seen if "nn.ReLU modules only" in str(w.message)]
    assert relu and all(m.startswith("Captum's NoiseTunnel-GuidedBackprop") for m in relu)
    assert not [m for m in relu if m.startswith("Captum's GuidedBackprop")]
    assert result.maps["NoiseTunnel-GuidedBackprop"].shape == x.shape
