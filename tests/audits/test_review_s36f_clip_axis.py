"""Review of fe881742 and 407a3399. fe881742 named a video clip's groups ``frames`` under ``figure_kind="frames"``, but
``CounterfactualAudit``'s rows still held each clip's drawn frame as ``depth`` (the report's JSON and the TensorBoard
table), and a monitor on a Sobol' tag of the version before (``S/0_depth_0-3_...``) was told only that the tag is not
logged, among 40 tags listed, not what it is called now. 407a3399 made ``mark_whole`` public API of
``lightning_causal.causal``, but two refusals (the batch-coupled output's, ``CounterfactualFairnessTerm``'s gathered
weight's) still told users to import it from the engine's module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import AuditModelCheckpoint, CausalAuditCallback, SobolAudit, audit_model
from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.audits.group_regions import video_clips
from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.models import LightningClassifier
from lightning_causal.repair.fairness import CounterfactualFairnessTerm
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.helpers.lightning import quick_trainer


def _frame_reader() -> nn.Module:
    """Class 1 reads one pixel of frame 4 of a clip ``[N, 1, 6, 3, 3]``: only there can a change flip the class."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(6 * 3 * 3, 2, bias=False))
    w = torch.zeros(2, 1, 6, 3, 3)
    w[1, 0, 4, 1, 1] = 1.0
    model[1].weight.data.copy_(w.reshape(2, -1))
    return model


def _counterfactuals() -> CounterfactualAudit:
    return CounterfactualAudit(max_samples=2, towards="runner_up", settings=CounterfactualSettings(steps=25, polish=0))


def test_a_clips_counterfactual_rows_name_its_frame_and_a_volumes_its_depth(tmp_path):
    x = torch.zeros(2, 1, 6, 3, 3)
    with video_clips():
        clip = _counterfactuals().run(_frame_reader(), Probe(x))
    volume = _counterfactuals().run(_frame_reader(), Probe(x))
    assert [row.get("frame") for row in clip.tables["counterfactuals"]] == [4, 4]  # was depth
    assert not any("depth" in row for row in clip.tables["counterfactuals"])
    assert [row.get("depth") for row in volume.tables["counterfactuals"]] == [4, 4]
    assert not any("frame" in row for row in volume.tables["counterfactuals"])
    for result, kind, caption in [(clip, "frames", "frame 4"), (volume, None, "depth slice 4"), (volume, "frames", "frame 4")]:
        fig = TensorBoardRenderer(max_samples=2, figure_kind=kind).figures([result], x)["causal/counterfactual/images/counterfactuals"]
        assert [ax.get_title().split("\n")[-1] for ax in fig.axes[:2]] == [caption] * 2
    # through audit_model's figure_kind, in the JSON report a user reads
    data = DataLoader(TensorDataset(x, torch.zeros(2, dtype=torch.long)), batch_size=2)
    (result,) = audit_model(_frame_reader(), [_counterfactuals()], data, probe_size=2, figure_kind="frames", report_dir=tmp_path)
    assert [row["frame"] for row in result.tables["counterfactuals"]] == [4, 4]
    report = json.dumps(json.loads(next(Path(tmp_path).glob("*.json")).read_text()))
    assert '"frame": 4' in report and '"depth"' not in report


@pytest.mark.parametrize(("kind", "old", "now"), [("frames", "depth", "frames"), (None, "frames", "depth")])
def test_a_monitor_on_a_clips_tag_read_the_other_way_is_told_the_tag_now(kind, old, now, tmp_path):
    x = torch.rand(16, 1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    w = torch.zeros(2, 1, 4, 4, 4)
    w[1, 0, :2, :2, :2] = 1.0  # class 1 reads group 0 (frames or depth 0-1, rows 0-1, cols 0-1) only
    net[1].weight.data.copy_(w.reshape(2, -1))
    y = net(x).argmax(1)
    cb = CausalAuditCallback([SobolAudit(n=16, patch_size=2, n_bootstrap=0)], probe=(x[:8], y[:8]), figure_kind=kind,
                             report_dir=tmp_path)
    monitor = f"causal/sobol/S/0_{old}_0-1_rows_0-1_cols_0-1"  # group 0 read the other way
    tag = f"causal/sobol/S/0_{now}_0-1_rows_0-1_cols_0-1"
    with pytest.warns(UserWarning, match="not among the scalars of the audits' dry run") as said, \
            pytest.raises(MisconfigurationException, match="found no such scalar") as caught:
        quick_trainer(callbacks=[cb, AuditModelCheckpoint(monitor=monitor, dirpath=tmp_path, mode="max")], max_epochs=1,
                      limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0, enable_checkpointing=True).fit(
            LightningClassifier(net), DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(x, y), batch_size=8))
    dry_run = " ".join(str(w.message) for w in said if "dry run" in str(w.message))
    assert tag in cb.dry_run_tags  # the tag it is now, named before training and at the first audit
    assert f"monitor {tag!r}" in dry_run and f"monitor {tag!r}" in str(caught.value)


def test_the_refusals_name_mark_whole_by_its_public_import():
    class InBatch(nn.Module):  # row i scores every item of its batch
        def __init__(self) -> None:
            super().__init__()
            self.u = nn.Linear(4, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.u(x) @ self.u(x).T

    class Weighted(nn.Module):
        def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return x @ w

    with pytest.raises(ValueError, match="width follows the batch") as coupled:
        input_effects(InBatch(), torch.randn(3, 4), target=torch.arange(3))
    with pytest.raises(RuntimeError, match="must be marked") as gathered:
        CounterfactualFairnessTerm(AttributeFlip(0)).loss(Weighted(), torch.tensor([[0.0, 1.0], [1.0, 2.0]]), None,
                                                         additional_forward_args=(torch.eye(2),))
    for caught in (coupled, gathered):
        assert "from lightning_causal.causal import mark_whole" in str(caught.value)
        assert "engine.forward_args" not in str(caught.value)
