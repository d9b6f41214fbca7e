"""The console line of a slow audit epoch (``cost_line``): a user whose audits took far longer than the
training they follow (``InputEffectAudit()`` on 3x32x32 images: 3,072 groups per sample) read only
"Causal audit at epoch 0 took 90.3 s", with no word of which audit took the time nor of how it compares
with training. The line now names the slowest audits and, where the audits took longer than the fit
spent since the last audit, that ratio and the options that lower it."""

from __future__ import annotations

import logging
import re

import pytest

from lightning_causal import CausalAuditCallback
from lightning_causal.callbacks import _audit_run
from lightning_causal.callbacks._audit_run import cost_line
from tests.helpers.lightning import SleepAudit, classifier, loaders, trainer


def test_cost_line_names_the_slowest_audits_and_the_ratio_to_training():
    line = cost_line(3, 40.0, {"a": 1.0, "b": 30.0, "c": 5.0, "d": 4.0}, 8.0)
    assert line.startswith("Causal audit at epoch 3 took 40.0 s (b 30.0 s, c 5.0 s, d 4.0 s, ...), 5.0x the 8.0 s")
    assert "`patch_size=`" in line and "`every_n_epochs=`" in line and "`probe_size=`" in line
    # audits shorter than the training since the last audit, or an unknown training time: no ratio, no advice
    assert cost_line(3, 4.0, {"a": 3.0, "b": 1.0}, 8.0) == "Causal audit at epoch 3 took 4.0 s (a 3.0 s, b 1.0 s)"
    assert cost_line(3, 4.0, {"a": 4.0}, None) == "Causal audit at epoch 3 took 4.0 s"
    assert ", 80.0x the 0.05 s the fit" in cost_line(3, 4.0, {"a": 4.0}, 0.05)  # short fits: not "the 0.0 s"


def test_a_fit_whose_audits_outlast_its_training_says_which_and_by_how_much(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(_audit_run, "SLOW_AUDIT_SECONDS", 0.1)  # the line's threshold, for a test that sleeps little
    callback = CausalAuditCallback([SleepAudit("slow", 0.5), SleepAudit("quick", 0.0)], probe_size=8)
    t = trainer(tmp_path, max_epochs=2, callbacks=[callback], limit_train_batches=2, limit_val_batches=1)
    with caplog.at_level(logging.INFO):
        t.fit(classifier(), *loaders())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Causal audit at epoch")]
    assert [line.split(" took")[0] for line in lines] == ["Causal audit at epoch 0", "Causal audit at epoch 1"]
    for line in lines:
        slow, quick = re.search(r"\(slow (\d+\.\d) s, quick (\d+\.\d) s\)", line).groups()  # the slowest first
        assert float(slow) >= 0.5 and float(quick) < float(slow)  # a loaded machine sleeps longer: 0.6 s seen (session 30)
        ratio = float(line.split("x the ")[0].rsplit(", ", 1)[1])  # two batches take far less than 0.5 s
        spent = float(line.split("x the ")[1].split(" s")[0])
        total = float(line.split(" took ")[1].split(" s")[0])
        assert ratio > 1 and ratio == pytest.approx(total / spent, rel=0.2)
