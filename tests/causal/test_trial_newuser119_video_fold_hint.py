"""newuser119 trial: the layer map and the causal graph refuse a video network's convolutions whose output folds the
clips' frames into the batch ([N·T, C, H, W], a temporal shift network's); their refusal named Swin, OPT, graph networks
and classifier-free guidance, not the video case, and the TSM has no module of one row per clip to name. It now names
the site to add, an nn.Unflatten(0, (-1, T)) module the forward folds again, with unit_dim=2; followed, both run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CausalGraphAudit, LayerMapAudit
from lightning_causal.audits import Probe

T = 4


class FrameCNN(nn.Module):
    def __init__(self, site: bool) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.clip = nn.Unflatten(0, (-1, T)) if site else None
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, T, 1, H, W]
        n = x.shape[0]
        h = F.relu(self.conv1(x.flatten(0, 1)))
        if self.clip is not None:
            h = self.clip(h).flatten(0, 1)  # the rows put back per clip at the site, folded again after it
        h = F.relu(self.conv2(h))
        return self.head(h.mean((2, 3))).view(n, T, -1).mean(1)


def _probe() -> Probe:
    x = torch.randn(6, T, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    return Probe(x, torch.zeros(6, dtype=torch.long))


@pytest.mark.parametrize("audit", [lambda: LayerMapAudit(feature_mask=torch.arange(T).reshape(1, T, 1, 1, 1), layers=["conv1"]),
                                   lambda: CausalGraphAudit(["conv1", "conv2"])])
def test_a_folded_video_convolution_is_refused_naming_the_site_to_add(audit):
    torch.manual_seed(0)
    with pytest.raises(ValueError) as err:
        audit().run(FrameCNN(site=False).eval(), _probe())
    text = str(err.value)
    assert f"With {T} rows per sample" in text
    assert f"nn.Unflatten(0, (-1, {T}))" in text and "unit_dim=2" in text  # was: Swin, OPT, graphs, guidance only
    assert "'Video networks that fold frames into the batch (TSM)'" in text


def test_the_site_named_takes_the_layer_map_and_the_graph():
    torch.manual_seed(0)
    model, probe = FrameCNN(site=True).eval(), _probe()
    result = LayerMapAudit(feature_mask=torch.arange(T).reshape(1, T, 1, 1, 1), layers=["clip"]).run(model, probe)
    assert result.scalars["n_layers"] == 1.0
    graph = CausalGraphAudit(["clip"], unit_dim=2).run(model, probe)
    assert graph.scalars["n_nodes"] >= 1


def test_other_folds_keep_their_words():
    from lightning_causal.causal.engine.unit_sites import folded_hint

    assert "Unflatten" not in folded_hint((12, 48), 2)  # OPT's [N·T, D]
    assert "Unflatten" not in folded_hint((12, 7, 32), 2)  # Swin's [N·windows, T, D]
