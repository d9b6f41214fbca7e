"""DDP with 2 CPU processes (gloo): same report as one process, only rank 0 writes."""

from __future__ import annotations

import pytest
import torch

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit, load_report
from tests.helpers.lit import loaders, small_module, trainer


class RankRecordingCallback(CausalAuditCallback):
    """Leaves a marker file for every process that wrote a report (module level: picklable)."""

    def _write_report(self, trainer, epoch, stage, results, total):
        wrote = super()._write_report(trainer, epoch, stage, results, total)
        if wrote:
            open(f"{self.report_dir}/wrote_rank{trainer.global_rank}_{epoch}", "w").close()
        return wrote


def _fit(tmp_path, name, **kwargs):
    torch.manual_seed(11)
    module = small_module(batch_norm=False, dropout=0.0)
    module.lr = 0.0  # identical weights whatever the data sharding: the audits must then agree exactly
    cb = RankRecordingCallback(
        [InputEffectAudit(patch_size=4), UnitImportanceAudit(["model.conv1", "model.conv2"], top_k=3)],
        probe_size=24, report_dir=str(tmp_path / name),
    )
    trainer(callbacks=[cb], max_epochs=1, **kwargs).fit(module, *loaders(n=64))
    return tmp_path / name


def test_ddp_report_equals_single_process(tmp_path):
    single = _fit(tmp_path, "single")
    ddp = _fit(tmp_path, "ddp", strategy="ddp_spawn", devices=2, accelerator="cpu")
    a, b = load_report(single / "epoch_0000.json"), load_report(ddp / "epoch_0000.json")
    for audit in a["audits"]:
        ra, rb = a["audits"][audit], b["audits"][audit]
        for k, v in ra["scalars"].items():
            assert v == pytest.approx(rb["scalars"][k], rel=1e-5, abs=1e-7), (audit, k)
        for k, v in ra["vectors"].items():
            torch.testing.assert_close(torch.tensor(rb["vectors"][k]), torch.tensor(v), rtol=1e-5, atol=1e-7)
        for k, rows in ra["tables"].items():  # same top groups / units in the same order
            assert [r.get("unit", r.get("group")) for r in rows] == [r.get("unit", r.get("group")) for r in rb["tables"][k]]
    markers = sorted(p.name for p in ddp.iterdir() if p.name.startswith("wrote_"))
    assert markers == ["wrote_rank0_0"]
