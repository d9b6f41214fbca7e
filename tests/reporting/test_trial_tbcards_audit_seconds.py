"""Two CausalAuditCallbacks in one Trainer both logged ``causal/audit_seconds`` at the step of an epoch
both audit: TensorBoard showed one series mixing the two callbacks' times, and ``callback_metrics`` (what
``AuditModelCheckpoint("causal/audit_seconds")`` reads) held the second's time only. A later callback
now logs ``causal/audit_seconds_<its audits' names>``; one callback keeps ``causal/audit_seconds``."""

from __future__ import annotations

import json

import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_causal import AuditModelCheckpoint, CausalAuditCallback
from lightning_causal.callbacks.monitoring import audit_owners
from tests.helpers.lightning import SleepAudit, classifier, loaders, trainer


def _reports(directory):
    return {p.name: json.loads(p.read_text())["audit_seconds"] for p in sorted(directory.glob("epoch_*.json"))}


def test_each_audit_callback_logs_its_own_time(tmp_path):
    quick = CausalAuditCallback([SleepAudit("quick", 0.0)], probe_size=8)
    slow = CausalAuditCallback([SleepAudit("slow", 0.3), SleepAudit("slower", 0.0)], probe_size=8)
    t = trainer(tmp_path, max_epochs=1, callbacks=[quick, slow], logger=TensorBoardLogger(tmp_path, name="", version=""))
    t.fit(classifier(), *loaders())
    reports = _reports(tmp_path / "causal_audit")  # one report per callback (a shared report_dir)
    own, later = reports["epoch_0000.json"], reports["epoch_0000_slow+slower.json"]
    assert later > own + 0.2
    assert float(t.callback_metrics["causal/audit_seconds"]) == pytest.approx(own, rel=1e-5)
    assert float(t.callback_metrics["causal/audit_seconds_slow+slower"]) == pytest.approx(later, rel=1e-5)
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.value for e in acc.Scalars("causal/audit_seconds")] == pytest.approx([own], rel=1e-5)
    assert [e.value for e in acc.Scalars("causal/audit_seconds_slow+slower")] == pytest.approx([later], rel=1e-5)
    assert quick.last_scalars.keys() == {"causal/quick/score", "causal/audit_seconds"}


def test_a_monitor_follows_the_callback_whose_time_it_is(tmp_path):
    first = CausalAuditCallback([SleepAudit("a", 0.0)], probe_size=8)
    second = CausalAuditCallback([SleepAudit("b", 0.0)], probe_size=8)
    assert audit_owners("causal/audit_seconds", [first, second]) == [first]
    assert audit_owners("causal/audit_seconds_b", [first, second]) == [second]
    assert audit_owners("causal/audit_seconds", [second]) == [second]  # alone: the plain tag
    check = AuditModelCheckpoint("causal/audit_seconds_a", tmp_path / "ckpt")
    t = trainer(tmp_path, max_epochs=1, callbacks=[first, second, check], enable_checkpointing=True)
    with pytest.raises(MisconfigurationException, match="`causal/audit_seconds`, `causal/audit_seconds_b`"):
        t.fit(classifier(), *loaders())  # the first callback's time has the plain tag: the error lists both
