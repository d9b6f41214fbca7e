"""SobolAudit's scalar tags of image patches, volumes' cubes and signal windows were bare ids (``S/17``): a user
read ``causal/sobol/S/17`` in TensorBoard with nothing saying which patch it is. They now say where the group
lies (``S/17_rows_8-15_cols_0-7``), stay the same over audits whose top groups differ, and share one chart."""

from __future__ import annotations

import re

import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit
from lightning_causal.reporting.layout import custom_layout
from lightning_causal.reporting.tensorboard import scalar_tags


def _patch_model(weights: list[float]) -> nn.Module:
    """A linear read of a 1x8x8 image: one weight per 4x4 patch (patch k at rows 4(k//2).., cols 4(k%2)..)."""
    w = torch.zeros(1, 1, 8, 8)
    for k, v in enumerate(weights):
        w[..., 4 * (k // 2):4 * (k // 2) + 4, 4 * (k % 2):4 * (k % 2) + 4] = v
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.cat([w.reshape(1, 64), -w.reshape(1, 64)]) * 0.2)  # p well inside (0, 1)
    return model


def test_patch_tags_name_where_the_patch_lies_and_stay_over_audits():
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    audit = SobolAudit(n=64, top_k=2, n_bootstrap=0, patch_size=4, target=0)
    first = audit.run(_patch_model([0.0, 0.0, 1.0, 0.5]), Probe(x))  # patches 2 (rows 4-7, cols 0-3) and 3 on top
    assert [row["group"] for row in first.tables["indices"][:2]] == [2, 3]
    expected = {"S/2_rows_4-7_cols_0-3", "ST/2_rows_4-7_cols_0-3", "S/3_rows_4-7_cols_4-7", "ST/3_rows_4-7_cols_4-7",
                "sum_S", "output_variance"}
    assert set(first.scalars) == expected
    second = audit.run(_patch_model([1.0, 0.5, 0.0, 0.0]), Probe(x))  # now patches 0 and 1 are
    assert [row["group"] for row in second.tables["indices"][:2]] == [0, 1]
    assert set(second.scalars) == expected  # the same series, no gaps, no new tags
    assert first.meta["group_tags"] == second.meta["group_tags"] == ["2_rows_4-7_cols_0-3", "3_rows_4-7_cols_4-7"]
    # one chart of S (and one of ST) holding both patches, not one chart per patch
    layout = custom_layout(set(scalar_tags(first)), set(first.meta["group_tags"]))
    assert sorted(layout["causal: sobol"]) == ["S", "ST", "output_variance", "sum_S"]
    tags = scalar_tags(first)
    assert sorted(t for t in tags if any(re.match(p, t) for p in layout["causal: sobol"]["S"][1])) == [
        "causal/sobol/S/2_rows_4-7_cols_0-3", "causal/sobol/S/3_rows_4-7_cols_4-7"]


def test_windows_of_a_signal_and_cubes_of_a_volume_are_named_too_and_columns_keep_their_index():
    x = torch.rand(32, 1, 40, generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(40) // 10).view(1, 1, 40)
    model = nn.Sequential(nn.Flatten(), nn.Linear(40, 2))
    r = SobolAudit(n=64, top_k=4, n_bootstrap=0, feature_mask=mask).run(model, Probe(x))
    assert {k for k in r.scalars if k.startswith("S/")} == {f"S/{g}_steps_{10 * g}-{10 * g + 9}" for g in range(4)}
    v = torch.rand(16, 1, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    r = SobolAudit(n=64, top_k=8, n_bootstrap=0, patch_size=2).run(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), Probe(v))
    assert "S/7_depth_2-3_rows_2-3_cols_2-3" in r.scalars and "S/0_depth_0-1_rows_0-1_cols_0-1" in r.scalars
    tab = SobolAudit(n=64, top_k=3, n_bootstrap=0).run(nn.Linear(3, 2), Probe(torch.rand(32, 3)))
    assert {k for k in tab.scalars if k.startswith("S/")} == {"S/0", "S/1", "S/2"} and "group_tags" not in tab.meta
