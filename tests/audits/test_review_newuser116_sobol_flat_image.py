"""``SobolAudit(patch_size=)`` on a flattened image (sklearn's digits, ``[N, 64]``) refused naming only the shapes it
takes, where the other audits (``group_mask``) name the way out since newuser116's 6cb4a51c; it now gives the same
``feature_mask=`` recipe, whose groups the audit then takes (review of newuser116)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit
from lightning_causal.causal.engine.groups import group_mask


def test_sobol_patch_size_on_a_flattened_image_names_the_feature_mask_recipe() -> None:
    torch.manual_seed(0)
    x, net = torch.rand(16, 64), nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match=r"flattened image.*feature_mask=") as err:
        SobolAudit(n=32, patch_size=2, n_bootstrap=0).run(net, Probe(x))
    scope = {"torch": torch, "H": 8, "W": 8, "p": 2}
    exec(re.search(r"`(r, c = .*?)` for patches", str(err.value)).group(1).replace("; ", "\n"), scope)
    assert torch.equal(scope["feature_mask"], group_mask(x.view(16, 1, 8, 8), patch_size=2).flatten())
    result = SobolAudit(n=32, feature_mask=scope["feature_mask"], n_bootstrap=0, top_k=16).run(net, Probe(x))
    assert result.scalars  # the 16 patches explained
