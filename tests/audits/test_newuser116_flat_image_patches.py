"""``patch_size`` on flattened images (sklearn's digits, ``[N, 64]``) was refused naming the shapes it takes only; the
refusal now gives the way out, the patches as ``feature_mask=``, whose recipe gives the patches of the image's own
shape (trial newuser116)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal.engine.groups import group_mask


def test_patch_size_on_a_flattened_image_names_the_feature_mask_recipe() -> None:
    x = torch.rand(6, 64)
    with pytest.raises(ValueError, match=r"flattened image.*feature_mask=") as err:
        InputEffectAudit(patch_size=2).run(nn.Linear(64, 3), Probe(x, torch.zeros(6, dtype=torch.long)))
    recipe = re.search(r"`(r, c = .*?)` for patches", str(err.value)).group(1)
    H = W = 8  # noqa: N806
    p = 2
    scope = {"torch": torch, "H": H, "W": W, "p": p}
    exec(recipe.replace("; ", "\n"), scope)  # the recipe as the user would paste it
    assert torch.equal(scope["feature_mask"], group_mask(x.view(6, 1, 8, 8), patch_size=2).flatten())
    effects = InputEffectAudit(feature_mask=scope["feature_mask"]).run(nn.Linear(64, 3), Probe(x, torch.zeros(6, dtype=torch.long)))
    assert effects.scalars  # 16 groups explained
