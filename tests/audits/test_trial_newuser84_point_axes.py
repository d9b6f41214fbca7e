"""A PointNet's point clouds ``[N, 3, P]`` (``Conv1d`` layers) or ``[N, P, 3]`` drawn with ``figure_kind="points"``
were named as a signal's time steps, or an image's rows, everywhere but the figure: one group per point gave
``top_groups`` and Sobol' ``indices`` rows ``steps: [7, 8]`` (``rows`` for ``[N, 16, 8]``), Sobol' tags
``S/7_steps_7-7`` and a text card "7 at steps 7–7". Under ``figure_kind="points"`` (``CausalAuditCallback`` and
``audit_model``) and within ``point_clouds()`` the audits name ``points`` (``coordinates`` where a group holds some of
them only, the shorter axis, or the axis beside a padded one); other kinds keep ``steps``/``rows``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, SobolAudit, audit_model
from lightning_causal.audits.group_regions import group_region, point_clouds
from lightning_causal.models import LightningClassifier
from lightning_causal.reporting.summary import markdown_summary
from tests.helpers.lightning import quick_trainer

P = 16


def _clouds(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:  # [N, 3, P]: some point lies above z = 0.8
    x = torch.rand(n, 3, P, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return x, (x[:, 2].max(1).values > 0.8).long()


def _pointnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(3, 8, 1), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(8, 2))


def _audits() -> list:
    per_point = torch.arange(P).reshape(1, 1, P).expand(1, 3, P)
    return [InputEffectAudit(feature_mask=per_point, ace_values=None),
            SobolAudit(n=32, feature_mask=per_point, n_bootstrap=0)]


@pytest.mark.parametrize("kind", ["points", None])
def test_point_groups_name_points_in_rows_tags_card_and_report(kind, tmp_path):
    x, y = _clouds()
    effect, sobol = audit_model(_pointnet(), _audits(), DataLoader(TensorDataset(x, y), batch_size=8), probe_size=8,
                                figure_kind=kind, report_dir=tmp_path)
    word, other = ("points", "steps") if kind == "points" else ("steps", "points")
    rows = effect.tables["top_groups"] + sobol.tables["indices"]
    assert all(row[word] == [row["group"], row["group"] + 1] and other not in row for row in rows)  # was steps
    tags = [k for k in sobol.scalars if k.startswith(("S/", "ST/"))]
    assert tags and all(f"_{word}_" in t for t in tags)
    card = markdown_summary(0, [effect, sobol])
    assert f"at {word} " in card and f"at {other} " not in card
    report = json.dumps(json.loads(next(Path(tmp_path).glob("*.json")).read_text()))
    assert f'"{word}"' in report and f'"{other}"' not in report


def test_the_callbacks_dry_run_and_audits_name_points_under_the_points_kind(tmp_path):
    x, y = _clouds(32)
    cb = CausalAuditCallback(_audits(), probe=(x[:8], y[:8]), figure_kind="points", report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0).fit(
        LightningClassifier(_pointnet()), DataLoader(TensorDataset(x, y), batch_size=16),
        DataLoader(TensorDataset(x, y), batch_size=16))
    assert any("S/" in t and "_points_" in t for t in cb.dry_run_tags)  # monitors checked against the audits' own tags
    assert not any("_steps_" in t for t in cb.dry_run_tags)
    report = json.dumps(json.loads(next(Path(tmp_path).glob("*.json")).read_text()))
    assert '"points"' in report and '"steps"' not in report


def test_which_axis_holds_the_points():
    first, last = torch.zeros(2, 3, 64), torch.zeros(2, 64, 3)  # a Conv1d PointNet's layout, a Linear one's
    per_coord = torch.arange(3).reshape(1, 3, 1).expand(1, 3, 64)
    square, padding = torch.zeros(2, 8, 8), torch.zeros(2, 1, 8, dtype=torch.bool)  # 8 points of 8 features, padded
    with point_clouds():
        assert group_region(torch.arange(64).reshape(1, 1, 64).expand(1, 3, 64), 5, first) == {"points": [5, 6]}
        assert group_region(torch.arange(64).reshape(1, 64, 1).expand(1, 64, 3), 5, last) == {"points": [5, 6]}
        assert group_region(per_coord, 2, first) == {"points": [0, 64], "coordinates": [2, 3]}
        assert group_region(torch.arange(8).reshape(1, 1, 8).expand(1, 8, 8), 3, square, padding) == {"points": [3, 4]}
    assert group_region(torch.arange(64).reshape(1, 1, 64).expand(1, 3, 64), 5, first) == {"steps": [5, 6]}
    with pytest.raises(TypeError, match="`clouds`"):
        with point_clouds("yes"):  # type: ignore[arg-type]
            pass
