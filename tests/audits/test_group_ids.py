"""Feature groups are a partition of the input: renumbering them (superpixels numbered from 1, as
``skimage.segmentation.slic`` does, or ids with gaps) changes no summary of the input audits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, InputEffectAudit
from lightning_causal.audits.base import Probe


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)).eval()


def _superpixels() -> torch.Tensor:
    """Six irregular regions of a 6x6 image, numbered 0..5, shared by the channels: [1, 1, 6, 6]."""
    yy, xx = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    return ((yy // 3) * 3 + torch.clamp((xx + yy % 2) // 2, max=2)).view(1, 1, 6, 6)


@pytest.mark.parametrize("relabel", [lambda m: m + 1, lambda m: 2 * m + 3])
def test_renumbered_superpixels_give_the_same_input_effect_summaries(relabel):
    """Before: an id no pixel carries counted as a group of effect 0, so ids from 1 lowered
    mean_abs_effect by 1/(G+1) and ids 2g+3 halved it (0.0478 -> 0.0250 on a 3x32x32 model)."""
    x = torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    mask = _superpixels()
    assert sorted(mask.unique().tolist()) == list(range(6))
    model, probe = _model(), Probe(x)
    ref = InputEffectAudit(feature_mask=mask, ace_values=3).run(model, probe)
    got = InputEffectAudit(feature_mask=relabel(mask), ace_values=3).run(model, probe)
    assert got.scalars.keys() == ref.scalars.keys()
    for key, value in ref.scalars.items():
        assert got.scalars[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    ids = relabel(torch.arange(6))
    assert torch.allclose(got.vectors["mean_abs_effect"][ids], ref.vectors["mean_abs_effect"])
    assert [row["group"] for row in got.tables["top_groups"]] == [int(ids[row["group"]]) for row in ref.tables["top_groups"]]


def test_renumbered_superpixels_give_the_same_captum_agreement():
    """Before: ids 2g+3 raised IntegratedGradients' Spearman agreement from 0.796 to 0.967 (empty
    groups tied at 0 in both rankings)."""
    x = torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    model, probe, mask = _model(), Probe(x), _superpixels()
    ref = CaptumBaseline(methods=("IntegratedGradients",), feature_mask=mask).run(model, probe)
    got = CaptumBaseline(methods=("IntegratedGradients",), feature_mask=2 * mask + 3).run(model, probe)
    for key in ("compare/IntegratedGradients/spearman", "compare/IntegratedGradients/kendall", "compare/IntegratedGradients/topk",
                "compare/IntegratedGradients/deletion_auc", "deletion_auc"):
        assert got.scalars[key] == pytest.approx(ref.scalars[key], abs=1e-6), key


def test_renumbered_superpixels_give_the_same_layer_map():
    """Before: with ids 2g+3 the rows of the absent ids (no change anywhere) entered the CKA and the
    means: output_response 0.0426 -> 0.0223 and every layer_response halved on a 3x32x32 model."""
    from lightning_causal.audits import LayerMapAudit

    x = torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    model, probe, mask = _model(), Probe(x), _superpixels()
    layers = ["0", "1", "4"]
    for max_rows in (None, 20):  # all rows, and a random subset of them
        ref = LayerMapAudit(feature_mask=mask, layers=layers, max_rows=max_rows).run(model, probe)
        got = LayerMapAudit(feature_mask=2 * mask + 3, layers=layers, max_rows=max_rows).run(model, probe)
        assert torch.allclose(got.vectors["layer_response"], ref.vectors["layer_response"])
        assert got.scalars["output_response"] == pytest.approx(ref.scalars["output_response"], rel=1e-6)
        if max_rows is None:
            assert got.scalars["mean_adjacent_cka"] == pytest.approx(ref.scalars["mean_adjacent_cka"], rel=1e-6)
