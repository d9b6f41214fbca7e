"""``patch_size`` on volumes and videos ``[N, C, D, H, W]`` (trial newuser27: a Conv3d on 16^3 volumes whose class is a
blob in one octant). ``patch_size`` took images only and refused a volume ("Expected image inputs"), so the octants
(or any cubes) were a mask to write by hand in every audit; the default, one group per voxel, is 4,096 groups per
sample. ``patch_size=p`` now cuts a volume into cubes of side ``p`` (channels together), numbered depth, then row,
then column, in the core, InputEffectAudit and CaptumBaseline alike."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits import InputEffectAudit, Probe, SobolAudit
from lightning_causal.causal import patch_mask
from lightning_causal.causal.engine.groups import group_mask


def _octants():
    d = torch.arange(16) // 8
    return (d.view(-1, 1, 1) * 4 + d.view(1, -1, 1) * 2 + d.view(1, 1, -1)).reshape(1, 1, 16, 16, 16)


def test_cubes_of_a_volume_are_its_octants_numbered_depth_rows_cols_and_short_at_the_edges():
    assert torch.equal(patch_mask((1, 16, 16, 16), 8), _octants())
    assert torch.equal(group_mask(torch.zeros(2, 1, 16, 16, 16), patch_size=8), _octants())
    m = patch_mask((2, 3, 2, 5), 2)  # 2 channels, 2 x 1 x 3 cubes of side 2, the last ones cut short
    assert m.shape == (1, 2, 3, 2, 5) and torch.equal(m[0, 0], m[0, 1])
    assert m[0, 0, :, 0].tolist() == [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5]]
    with pytest.raises(ValueError, match=r"\(C, D, H, W\)"):
        patch_mask((2, 2, 3, 4, 5), 2)


def test_the_audit_finds_the_octant_of_a_planted_blob_with_patch_size():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 ** 3, 1, bias=False))
    weights = torch.zeros(1, 16, 16, 16)
    weights[0, 2:6, 10:14, 10:14] = 1.0  # depth < 8, rows >= 8, cols >= 8: octant 3
    model[1].weight.data.copy_(weights.reshape(1, -1))
    r = InputEffectAudit(patch_size=8, top_k=1, ace_values=None, target=0).run(model, Probe(torch.ones(2, 1, 16, 16, 16)))
    row = r.tables["top_groups"][0]
    assert row["group"] == 3 and row["mean_abs_effect"] == pytest.approx(64.0)
    assert (row["depth"], row["rows"], row["cols"]) == ([0, 8], [8, 16], [8, 16])
    assert r.maps["effect"].shape == (2, 1, 16, 16, 16)


def test_sobol_takes_cubes_of_a_volume_too_and_still_refuses_a_signal():
    x = torch.rand(3, 1, 4, 4, 4)
    SobolAudit(patch_size=2).validate(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)), Probe(x))
    with pytest.raises(ValueError, match="patch_size"):
        SobolAudit(patch_size=2).validate(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 2)), Probe(torch.rand(3, 8)))


def test_a_large_volume_with_default_groups_is_told_a_cube_side_and_a_video_its_frames_and_both_then_pass():
    import re
    import warnings

    x = torch.rand(2, 1, 32, 32, 32)  # 32,768 voxels: a group each by default
    with pytest.warns(UserWarning, match=r"32768 groups.*`patch_size=6` \(about 216 groups\)") as caught:
        InputEffectAudit().validate(torch.nn.Conv3d(1, 1, 3), Probe(x))
    frames = eval(re.search(r"feature_mask=(torch.arange.*?\))`", str(caught[0].message)).group(1), {"torch": torch})  # noqa: S307
    assert frames.shape == (1, 1, 32, 1, 1) and int(frames.max()) == 31
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        InputEffectAudit(patch_size=6).validate(torch.nn.Conv3d(1, 1, 3), Probe(x))
        InputEffectAudit(feature_mask=frames).validate(torch.nn.Conv3d(1, 1, 3), Probe(x))
