"""``SobolAudit._mask`` repeated ``group_mask``'s check of the inputs ``patch_size`` takes, in words of its own (the
flat-image hint had to be added to both): one check, ``groups.check_patch_inputs``, serves both (re-read of session
44's change), so SobolAudit and every other audit refuse a tabular or flattened input with one message."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe, SobolAudit


@pytest.mark.parametrize("shape", [(6, 64), (6, 2, 3, 4, 5, 2)], ids=["flat", "6-d"])
def test_sobol_and_the_other_audits_refuse_alike(shape) -> None:
    x = torch.rand(*shape)
    probe = Probe(x, torch.zeros(shape[0], dtype=torch.long))
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 3))
    said = []
    for audit in (SobolAudit(patch_size=2), InputEffectAudit(patch_size=2)):
        with pytest.raises(ValueError) as err:
            audit.validate(model, probe)
            audit.run(model, probe)
        said.append(str(err.value))
    assert said[0] == said[1]
    assert said[0].startswith(f"Expected image inputs [N, C, H, W] or [N, H, W], or volumes [N, C, D, H, W], with "
                              f"`patch_size` but got shape {list(shape)}")
    assert ("flattened image" in said[0]) == (len(shape) == 2)
