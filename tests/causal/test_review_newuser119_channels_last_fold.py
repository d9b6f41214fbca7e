"""Review of 16cd25a7 (unit_sites.VIDEO_FOLD_HINT): the refusal of a folded 4-D output told to name the
nn.Unflatten(0, (-1, k)) site "with unit_dim=2 for its channels"; a frame-wise ConvNeXt-like block whose pointwise
Linear runs channels last ([N·k, H, W, C]) followed it and got its H rows read as units, silently (5, not 7). The hint
now names unit_dim=-1 for channels last; followed, the site's units are the Linear's features, with the importances
UnitImportanceAudit gives the folded Linear itself."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CausalGraphAudit, UnitImportanceAudit
from lightning_causal.audits import Probe

K = 3


class ChannelsLast(nn.Module):
    def __init__(self, site: bool) -> None:
        super().__init__()
        self.dw, self.pw, self.head = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, 7), nn.Linear(7, 2)
        self.site = nn.Unflatten(0, (-1, K)) if site else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, K, 3, H, W]: K crops or frames per sample
        n = x.shape[0]
        h = self.pw(self.dw(x.flatten(0, 1)).permute(0, 2, 3, 1))  # [N·K, H, W, 7]
        if self.site is not None:
            h = self.site(h).flatten(0, 1)
        return self.head(F.gelu(h).mean((1, 2))).view(n, K, -1).mean(1)


def _probe() -> Probe:
    return Probe(torch.randn(4, K, 3, 5, 6, generator=torch.Generator().manual_seed(0)), torch.zeros(4, dtype=torch.long))


def test_a_channels_last_fold_is_told_unit_dim_minus_one():
    torch.manual_seed(0)
    with pytest.raises(ValueError) as err:
        CausalGraphAudit(["pw"]).run(ChannelsLast(site=False).eval(), _probe())
    text = str(err.value)
    assert f"nn.Unflatten(0, (-1, {K}))" in text and f"unit_dim=-1 for channels last ([N, {K}, H, W, C]" in text


def test_followed_the_site_reads_the_linears_features():
    torch.manual_seed(0)
    model, probe = ChannelsLast(site=True).eval(), _probe()
    at_site = UnitImportanceAudit(["site"], unit_dim=-1).run(model, probe).vectors["importance/site"]
    folded = UnitImportanceAudit(["pw"], unit_dim=-1).run(model, probe).vectors["importance/pw"]
    assert at_site.shape == (7,)  # unit_dim=2, as the hint said before, gave 5: the rows H
    torch.testing.assert_close(at_site, folded)
