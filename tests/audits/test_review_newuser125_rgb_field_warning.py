"""Review of newuser125's neural-fields recipe (docs/your_model.md): an RGB field ``[N, 3]`` explained under
``target=None`` (the largest channel per row) is warned of where the probe holds its real-valued labels ``[N, 3]``;
a probe of coordinates alone is not (nothing tells RGB from 3 classes), as the page now says."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from lightning_causal import InputEffectAudit, audit_model


class _RGBField(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("B", torch.randn(2, 8) * 2.0)
        self.net = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        p = 2 * math.pi * x @ self.B
        return self.net(torch.cat([p.sin(), p.cos()], -1))


def _said(data) -> list[str]:
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(_RGBField().eval(), [InputEffectAudit()], data)
    return [str(w.message) for w in caught if "real-valued [N, 3]" in str(w.message)]


def test_an_rgb_field_is_warned_of_where_the_probe_holds_its_values_only():
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(32, 2, generator=g) * 2 - 1
    assert _said((coords, torch.rand(32, 3, generator=g)))
    assert _said((coords,)) == []
