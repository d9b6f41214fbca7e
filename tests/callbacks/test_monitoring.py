"""AuditEarlyStopping and AuditModelCheckpoint on a causal scalar with a sparse audit schedule:
each audit's value is seen once, at its epoch; patience counts audits; the best checkpoint is an
audited epoch."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal import AuditEarlyStopping, AuditModelCheckpoint, CausalAuditCallback
from lightning_causal.audits.base import Audit, AuditResult
from tests.helpers.lightning import classifier, loaders, trainer

TAG = "causal/scripted/score"
# audit 1 (epoch 2) 1.0, audit 2 (epoch 5) 0.9 best, then no improvement: patience 2 stops after audit 4 (epoch 11)
SCRIPT = [1.0, 0.9, 0.95, 0.97, 0.5, 0.4]


class ScriptedAudit(Audit):
    """Returns the next value of ``script`` at each audit; its call count is its state, so the
    callback's dry run (state saved and restored around it) does not advance the script."""

    def __init__(self, script: list[float], fail_at: int | None = None) -> None:
        super().__init__("scripted")
        self.script, self.fail_at, self.calls = script, fail_at, 0

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:  # noqa: ANN001
        value = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at + 1:
            raise RuntimeError("scripted failure")
        return AuditResult(self.name, scalars={"score": value})

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state.get("calls", 0))


def _fit(root, *monitors, script=SCRIPT, max_epochs=20, **audit_options):
    cb = CausalAuditCallback([ScriptedAudit(script, audit_options.pop("fail_at", None))], every_n_epochs=3, probe_size=8,
                             report_dir=root / "reports", **audit_options)
    t = trainer(root, max_epochs=max_epochs, callbacks=[cb, *monitors], enable_checkpointing=any(
        isinstance(m, AuditModelCheckpoint) for m in monitors))
    t.fit(classifier(), *loaders())
    return t, cb


def test_lightning_early_stopping_cannot_monitor_a_sparse_schedule(tmp_path):
    """Why the subclasses exist: before the first audit the scalar is missing."""
    with pytest.raises(RuntimeError, match="not available"):
        _fit(tmp_path, EarlyStopping(TAG, patience=2))


def test_patience_counts_audits_and_the_best_checkpoint_is_an_audited_epoch(tmp_path):
    stop = AuditEarlyStopping(TAG, patience=2, mode="min")
    every = AuditModelCheckpoint(TAG, tmp_path / "all", save_top_k=-1, mode="min")
    t, cb = _fit(tmp_path, stop, every)
    assert cb.audited_epochs == [2, 5, 8, 11]
    assert stop.stopped_epoch == 11 and stop.wait_count == 2  # two audits without improvement, not two epochs
    assert float(stop.best_score) == pytest.approx(0.9)
    saved = sorted(int(p.name.split("-")[0].split("=")[1]) for p in (tmp_path / "all").iterdir())
    assert saved == [2, 5, 8, 11]  # one per audit, nothing else
    assert every.best_model_path.endswith("epoch=5-step=18.ckpt") and float(every.best_model_score) == pytest.approx(0.9)
    state = torch.load(every.best_model_path, weights_only=True)["callbacks"][cb.state_key]
    assert state["audited_epochs"] == [2, 5]  # a resume from it does not audit epoch 5 again
    assert t.current_epoch == 12


def test_the_value_seen_is_the_audit_of_that_epoch(tmp_path):
    """Improving audits never stop training; the monitor sees each audit's own value."""
    seen = []

    class Spy(AuditEarlyStopping):
        def on_train_epoch_end(self, trainer, pl_module):  # noqa: ANN001
            super().on_train_epoch_end(trainer, pl_module)
            if trainer.current_epoch in cb_ref[0].audited_epochs:
                seen.append((trainer.current_epoch, float(self.best_score)))

    cb_ref = []
    spy = Spy(TAG, patience=1, mode="max")
    cb = CausalAuditCallback([ScriptedAudit([1.0, 2.0, 3.0])], every_n_epochs=3, probe_size=8, report_dir=tmp_path / "r")
    cb_ref.append(cb)
    trainer(tmp_path, max_epochs=9, callbacks=[cb, spy]).fit(classifier(), *loaders())
    assert seen == [(2, 1.0), (5, 2.0), (8, 3.0)] and spy.stopped_epoch == 0


def test_a_monitor_no_audit_logs_fails_at_the_first_audit_naming_the_scalars(tmp_path):
    with pytest.raises(MisconfigurationException, match=r"monitor='causal/scripted/scor'.*epoch 2.*causal/scripted/score"):
        _fit(tmp_path, AuditEarlyStopping("causal/scripted/scor"))
    with pytest.raises(MisconfigurationException, match=r"`monitor` of AuditModelCheckpoint.*\['scripted'\].*'val_loss'"):
        _fit(tmp_path, AuditModelCheckpoint("val_loss", tmp_path / "c"))  # no audit logs it: fails at set-up


def test_a_missing_monitor_only_warns_when_not_strict(tmp_path):
    stop = AuditEarlyStopping("causal/scripted/scor", patience=1, strict=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, cb = _fit(tmp_path, stop, max_epochs=6)
    assert cb.audited_epochs == [2, 5] and stop.stopped_epoch == 0 and stop.wait_count == 0  # never compared
    skipped = [w for w in caught if "found no such scalar" in str(w.message) and "this audit is skipped" in str(w.message)]
    assert len(skipped) == 2  # once per audited epoch


def test_a_failed_audit_is_skipped_under_on_error_warn(tmp_path):
    stop = AuditEarlyStopping(TAG, patience=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, cb = _fit(tmp_path, stop, script=[1.0, 0.9, 0.8, 0.7], max_epochs=9, fail_at=1, on_error="warn")
    assert cb.audited_epochs == [2, 5, 8]
    assert float(stop.best_score) == pytest.approx(0.8) and stop.wait_count == 0  # 1.0, (failed), 0.8
    assert any("this audit is skipped (failed audits: ['causal/scripted/failed'])" in str(w.message) for w in caught)


def test_configuration_errors(tmp_path):
    with pytest.raises(MisconfigurationException, match="no schedule options.*every_n_epochs"):
        AuditModelCheckpoint(TAG, every_n_epochs=3)
    with pytest.raises(MisconfigurationException, match="`check_on_train_epoch_end` to be True"):
        AuditEarlyStopping(TAG, check_on_train_epoch_end=False)
    with pytest.raises(MisconfigurationException, match="callbacks hold none"):
        trainer(tmp_path, callbacks=[AuditEarlyStopping(TAG)]).fit(classifier(), *loaders())
