"""The layer causal map of a model(img, meta) whose side branch no input intervention reaches
(trial "batch"): its CKA must not depend on how the intervened rows are batched."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map, patch_mask


class ImageAndMeta(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.meta = nn.Linear(5, 6)  # fed by the forward argument only
        self.head = nn.Linear(4 * 16 + 6, 3)

    def forward(self, img: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        h = nn.functional.avg_pool2d(torch.relu(self.conv(img)), 2).flatten(1)
        return self.head(torch.cat([h, torch.relu(self.meta(meta))], 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_layer_no_intervention_reaches_has_no_cka_whatever_the_batch_size(dtype):
    g = torch.Generator().manual_seed(0)
    model = ImageAndMeta().to(dtype)
    img, meta = torch.randn(10, 1, 8, 8, generator=g, dtype=dtype), torch.randn(10, 5, generator=g, dtype=dtype)
    mask = patch_mask((1, 8, 8), 4)
    maps = [layer_causal_map(model, img, mask, additional_forward_args=(meta,), max_batch_size=b) for b in (None, 3, 1)]
    meta_row = maps[0].layers.index("meta")
    for m in maps:
        assert m.layers == ["conv", "meta", "head"]
        # chunked, meta's profile was rounding noise (|Δ| ~ 1e-16) and its CKA with conv and head
        # came out as 0.1, not the NaN of the unchunked map: the audit's mean_adjacent_cka went 0.98 -> 0.28
        assert all(math.isnan(float(v)) for v in m.cka[meta_row])
        assert torch.allclose(m.cka, maps[0].cka, equal_nan=True, atol=1e-5)
        assert m.nodes == maps[0].nodes
    assert maps[0].response[0] > 0.01 and maps[0].response[meta_row] < 1e-6  # the image branch does respond
