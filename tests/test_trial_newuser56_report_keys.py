"""audit_model's report holds the top-level entries of the callback's (newuser56 trial: reports read by programs).

docs/recipes.md lists a report's top level as ``schema_version``, ``epoch``, ``stage``, ``audit_seconds``, ``world_size``,
``probe`` and ``audits``; the callback's reports hold them all, but ``audit_model(..., report_dir=)``'s had no
``audit_seconds`` nor ``world_size``, so a program reading the fit's reports and a checkpoint's post-hoc report alike
(the cost of each audit epoch, a table of every report's entries) stopped with ``KeyError: 'audit_seconds'``.
"""

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    CausalAuditCallback,
    InputEffectAudit,
    UnitImportanceAudit,
    audit_model,
    load_report,
)
from lightning_causal.models import LightningClassifier


def _audits():
    return [InputEffectAudit(ace_values=None), UnitImportanceAudit(["model.0"])]


def test_audit_models_report_has_the_callbacks_top_level_entries_in_its_order(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 3, generator=g), torch.randint(0, 2, (24,), generator=g)
    val = DataLoader(TensorDataset(x[16:], y[16:]), batch_size=8)
    pl.seed_everything(0)
    model = LightningClassifier(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), lr=1e-2)
    callback = CausalAuditCallback(_audits(), probe_size=8, report_dir=tmp_path / "fit")
    pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
               callbacks=[callback]).fit(model, DataLoader(TensorDataset(x[:16], y[:16]), batch_size=8), val)
    fit = load_report(tmp_path / "fit" / "epoch_0000.json")

    results = audit_model(model, _audits(), val, probe_size=8, report_dir=tmp_path / "after")
    after = load_report(tmp_path / "after" / "epoch_0000.json")
    assert list(after) == list(fit) == ["schema_version", "epoch", "stage", "audits", "audit_seconds", "world_size", "probe",
                                        "model", "precision"]  # "model": newuser59's, the network explained; "precision":
    # newuser101's, the dtype the audits computed in
    assert after["precision"] == {"weights": "float32", "other_weights": [], "autocast": None, "trainer": None}
    assert fit["precision"] == {"weights": "float32", "other_weights": [], "autocast": None, "trainer": "32-true"}
    assert after["world_size"] == fit["world_size"] == 1
    assert isinstance(after["audit_seconds"], float)
    assert after["audit_seconds"] >= sum(r.meta["seconds"] for r in results)  # the audits' runs, and what lies between
    # not a clock reading: at most the audits' runs plus what lies between (generous on a loaded CI machine)
    assert after["audit_seconds"] < sum(r.meta["seconds"] for r in results) + 10.0
    assert [list(entry) for entry in after["audits"].values()] == [list(entry) for entry in fit["audits"].values()]
    for name, entry in after["audits"].items():  # the numbers of the fit's audit of the same weights
        assert entry["scalars"] == pytest.approx(fit["audits"][name]["scalars"], abs=1e-6)
