"""TensorBoard content, read back from the event files, agrees with the JSON report."""

from __future__ import annotations

import json
import math

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_causal import (
    CausalAuditCallback,
    InputEffectAudit,
    SobolAudit,
    UnitImportanceAudit,
    load_report,
)
from tests.helpers.lightning import quick_trainer, small_module, synthetic_loaders


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    logger = TensorBoardLogger(root, name="", version="")
    cb = CausalAuditCallback(
        [InputEffectAudit(patch_size=4), UnitImportanceAudit(["model.conv1", "model.conv2"], top_k=3),
         SobolAudit(n=64, patch_size=4, n_bootstrap=20)],
        every_n_epochs=1, probe_size=8,
    )
    quick_trainer(callbacks=[cb], max_epochs=2, logger=logger).fit(small_module(), *synthetic_loaders())
    acc = EventAccumulator(str(root), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return cb, acc, root


def test_report_dir_defaults_under_log_dir(run):
    cb, _, root = run
    assert cb.report_dir == str(root / "causal_audit")
    assert sorted(p.name for p in (root / "causal_audit").iterdir()) == ["epoch_0000.json", "epoch_0001.json"]


def test_scalar_tags_and_values_equal_the_json_report(run):
    cb, acc, root = run
    tags = set(acc.Tags()["scalars"])
    for epoch in (0, 1):
        report = load_report(root / "causal_audit" / f"epoch_{epoch:04d}.json")
        assert report["epoch"] == epoch and report["schema_version"] == 1
        for audit, result in report["audits"].items():
            for metric, value in result["scalars"].items():
                tag = f"causal/{audit}/{metric}"
                assert tag in tags, tag
                logged = [e.value for e in acc.Scalars(tag) if e.step is not None]
                # logged once per audited epoch, in order
                if isinstance(value, float) and math.isfinite(value):
                    assert any(math.isclose(v, value, rel_tol=1e-6, abs_tol=1e-7) for v in logged), (tag, value, logged)
    assert "causal/audit_seconds" in tags
    assert "causal/input_effect/drift/mean_abs_effect/spearman" in tags  # from the second audit on
    assert len(acc.Scalars("causal/input_effect/drift/mean_abs_effect/spearman")) == 1


def test_histograms_images_text_and_layout(run):
    _, acc, _ = run
    hists = set(acc.Tags()["histograms"])
    assert {"causal/input_effect/histograms/mean_abs_effect", "causal/unit_importance/histograms/importance/model.conv2"} <= hists
    assert not hists & set(acc.Tags()["scalars"])  # TensorBoard files a tag under one plugin only
    images = set(acc.Tags()["images"])
    assert "causal/input_effect/maps/sample_0" in images
    assert "causal/unit_importance/bars/importance/model.conv1" in images
    assert len(acc.Images("causal/sobol/intervals/indices")) == 2  # S/ST bars with intervals, per audit epoch
    img = acc.Images("causal/input_effect/maps/sample_0")[-1]
    assert img.width > 100 and img.height > 50 and img.step == acc.Scalars("causal/audit_seconds")[-1].step
    assert len(acc.Images("causal/input_effect/maps/sample_0")) == 2  # one per audit epoch
    text = acc.Tensors("causal/summary/text_summary")
    assert len(text) == 2 and b"input_effect" in text[0].tensor_proto.string_val[0]
    layout_events = [t for t in acc.Tags()["tensors"] if "custom_scalars" in t]
    assert layout_events, acc.Tags()["tensors"]


def test_json_report_is_plain_json(run):
    _, _, root = run
    doc = json.loads((root / "causal_audit" / "epoch_0001.json").read_text())
    maps = doc["audits"]["input_effect"]["maps"]["effect"]
    assert len(maps) == 8 and len(maps[0][0]) == 8  # [N, C, H, W] nested lists
    assert doc["audits"]["unit_importance"]["tables"]["top_units/model.conv1"][0].keys() == {"unit", "importance", "mean_effect"}


def test_load_report_reads_non_finite_numbers_back_as_floats(tmp_path):
    from lightning_causal.audits.base import AuditResult
    from lightning_causal.reporting.json_report import write_report

    r = AuditResult("a", scalars={"x": float("nan"), "y": 1.5, "z": float("-inf")}, vectors={"v": torch.tensor([1.0, float("inf")])})
    path = write_report(tmp_path, 0, "fit", [r])
    assert '"nan"' in path.read_text()  # strict JSON on disk
    got = load_report(path)["audits"]["a"]
    assert math.isnan(got["scalars"]["x"]) and got["scalars"]["y"] == 1.5 and got["scalars"]["z"] == -math.inf
    assert got["vectors"]["v"] == [1.0, math.inf] and got["audit"] == "a"


def test_load_report_rejects_other_files(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="no 'audits' key"):
        load_report(p)
    p.write_text(json.dumps({"audits": {}, "schema_version": 99}))
    with pytest.raises(ValueError, match="schema_version 1 but got 99"):
        load_report(p)


def test_without_tensorboard_scalars_still_reach_other_loggers(tmp_path):
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], report_dir=tmp_path / "r")
    t = quick_trainer(callbacks=[cb], max_epochs=1, logger=CSVLogger(tmp_path, name="csv"))
    t.fit(small_module(), *synthetic_loaders())
    header = next((tmp_path / "csv").rglob("metrics.csv")).read_text().splitlines()[0]
    assert "causal/input_effect/mean_abs_effect" in header and "causal/audit_seconds" in header
