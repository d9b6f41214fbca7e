"""A video classifier's clips ``[N, C, T, H, W]`` drawn with ``figure_kind="frames"`` were named as a volume's depth
everywhere else: ``top_groups`` and Sobol' ``indices`` rows held ``depth``, the Sobol' tags read
``S/11_depth_0-3_rows_8-11_cols_12-15`` and the text card and the report "11 at depth 0–3", for frames 0 to 3. Under
``figure_kind="frames"`` (``CausalAuditCallback`` and ``audit_model``) and within ``video_clips()`` the audits name
``frames``; a volume (no kind, or the ``"image"`` kind) keeps ``depth``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, SobolAudit, audit_model
from lightning_causal.audits.group_regions import group_region, region_text, video_clips
from lightning_causal.models import LightningClassifier
from lightning_causal.reporting.summary import markdown_summary
from tests.helpers.lightning import quick_trainer


def _clips(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 2, 8, 8, 8, generator=g)
    return x, (x[:, 0, :4].mean((1, 2, 3)) > x[:, 0, 4:].mean((1, 2, 3))).long()


def _video_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(2, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(3, 2))


def _audits() -> list:
    return [InputEffectAudit(patch_size=4, ace_values=None), SobolAudit(n=32, patch_size=4, n_bootstrap=0)]


@pytest.mark.parametrize("kind", ["frames", None, "image"])
def test_clips_name_frames_in_rows_tags_card_and_report_and_volumes_keep_depth(kind, tmp_path):
    x, y = _clips()
    effect, sobol = audit_model(_video_net(), _audits(), DataLoader(TensorDataset(x, y), batch_size=8), probe_size=8,
                                figure_kind=kind, report_dir=tmp_path)
    word, other = ("frames", "depth") if kind == "frames" else ("depth", "frames")
    rows = effect.tables["top_groups"] + sobol.tables["indices"]
    assert all(word in row and other not in row for row in rows)  # was depth for every kind
    tags = [k for k in sobol.scalars if k.startswith(("S/", "ST/"))]
    assert tags and all(f"_{word}_" in t for t in tags) and sobol.meta["group_tags"][0].split("_")[1] == word
    card = markdown_summary(0, [effect, sobol])
    assert f"at {word} " in card and f"at {other} " not in card
    report = json.loads(next(Path(tmp_path).glob("*.json")).read_text())
    assert f'"{word}"' in json.dumps(report) and f'"{other}"' not in json.dumps(report)


def test_the_callbacks_dry_run_and_audits_name_frames_under_the_frames_kind(tmp_path):
    x, y = _clips(32)
    cb = CausalAuditCallback(_audits(), probe=(x[:8], y[:8]), figure_kind="frames", report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0).fit(
        LightningClassifier(_video_net()), DataLoader(TensorDataset(x, y), batch_size=16),
        DataLoader(TensorDataset(x, y), batch_size=16))
    assert any("S/" in t and "_frames_" in t for t in cb.dry_run_tags)  # monitors checked against the audits' own tags
    assert not any("_depth_" in t for t in cb.dry_run_tags)
    report = json.loads(next(Path(tmp_path).glob("*.json")).read_text())
    assert '"frames"' in json.dumps(report) and '"depth"' not in json.dumps(report)


def test_video_clips_is_scoped_checked_and_leaves_other_shapes_alone():
    mask = torch.arange(2).repeat_interleave(4).view(1, 1, 8, 1, 1).expand(1, 1, 8, 4, 4)
    x = torch.zeros(2, 1, 8, 4, 4)
    with pytest.raises(RuntimeError), video_clips():
        assert group_region(mask, 1, x) == {"frames": [4, 8], "rows": [0, 4], "cols": [0, 4]}
        raise RuntimeError
    assert group_region(mask, 1, x) == {"depth": [4, 8], "rows": [0, 4], "cols": [0, 4]}  # reset on the way out, an exception too
    with video_clips(), video_clips(False):  # nested: the inner choice holds
        assert "depth" in group_region(mask, 1, x)
    with video_clips():
        assert region_text(group_region(mask, 1, x)) == "frames 4–7, rows 0–3, cols 0–3"
        image = torch.arange(4).repeat_interleave(4).view(1, 1, 16, 1).expand(1, 1, 16, 4)
        assert group_region(image, 2, torch.zeros(2, 1, 16, 4)) == {"rows": [8, 12], "cols": [0, 4]}  # an image is no clip
    with pytest.raises(TypeError, match="`clips`.*'yes'"), video_clips("yes"):  # type: ignore[arg-type]
        pass
