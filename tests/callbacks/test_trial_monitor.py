"""Monitoring trial (AuditEarlyStopping / AuditModelCheckpoint driven by audits): drift scalars as
monitors, a monitor that is not a tag, a monitored audit that never runs before ``max_epochs``."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from scipy.stats import spearmanr

from lightning_causal import AuditEarlyStopping, AuditModelCheckpoint, CausalAuditCallback
from lightning_causal.audits.base import Audit, AuditResult
from tests.helpers.lightning import classifier, loaders, trainer

VECTORS = [[4.0, 3.0, 2.0, 1.0, 0.0], [4.0, 2.0, 3.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 2.0, 3.0, 4.0]]
DRIFT = "causal/ranked/drift/imp/spearman"


class RankedAudit(Audit):
    """Returns the next vector of ``script`` at each audit (its call count is its state)."""

    def __init__(self, script: list[list[float]], fail_at: int | None = None) -> None:
        super().__init__("ranked")
        self.script, self.calls, self.fail_at = script, 0, fail_at

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:  # noqa: ANN001
        vector = torch.tensor(self.script[min(self.calls, len(self.script) - 1)])
        self.calls += 1
        if self.calls - 1 == self.fail_at and len(probe) > 2:  # not in the callback's dry run on 2 samples
            raise RuntimeError("scripted failure")
        return AuditResult(self.name, scalars={"top": float(vector.max())}, vectors={"imp": vector})

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state.get("calls", 0))


class Seen(AuditEarlyStopping):
    """Records the value of the monitor at each check."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[int, float]] = []

    def _run_early_stopping_check(self, trainer) -> None:  # noqa: ANN001
        self.seen.append((trainer.current_epoch, float(trainer.callback_metrics[self.monitor])))
        super()._run_early_stopping_check(trainer)


def _fit(tmp_path, script, *monitors, every=2, max_epochs=8, fail_at=None):
    cb = CausalAuditCallback([RankedAudit(script, fail_at)], every_n_epochs=every, probe_size=8, report_dir=tmp_path / "r",
                             on_error="raise" if fail_at is None else "warn")
    checkpoints = any(isinstance(m, ModelCheckpoint) for m in monitors)
    trainer(tmp_path, max_epochs=max_epochs, callbacks=[cb, *monitors], enable_checkpointing=checkpoints).fit(classifier(), *loaders())
    return cb


def test_a_drift_monitor_is_checked_from_the_second_audit_on(tmp_path):
    """Drift exists from an audit's second run on: the first audit is not a missing monitor."""
    stop = Seen(DRIFT, mode="min", patience=1)
    cb = _fit(tmp_path, VECTORS, stop)
    assert cb.audited_epochs == [1, 3, 5, 7]
    expected = [spearmanr(a, b).statistic for a, b in zip(VECTORS, VECTORS[1:])]  # 0.9, -0.9, 0.9
    assert [e for e, _ in stop.seen] == [3, 5, 7]
    assert [v for _, v in stop.seen] == pytest.approx(expected)
    assert stop.stopped_epoch == 7 and float(stop.best_score) == pytest.approx(-0.9)


def test_a_spearman_drift_of_a_constant_vector_is_skipped_with_a_warning(tmp_path):
    """``spearman`` is left out for a constant vector (no ranking) while ``shift`` is logged."""
    stop = Seen(DRIFT, mode="max", patience=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [[1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [3.0, 2.0, 1.0]], stop, max_epochs=6)
    assert stop.seen == []  # audit 1: no drift yet; audit 2: constant; audit 3: compared with a constant vector
    assert sum("left out this Spearman drift" in str(w.message) for w in caught) == 2


def test_a_drift_monitor_after_a_failed_first_audit_skips_the_audit_without_drift(tmp_path):
    """Audit 1 fails (on_error="warn"): audit 2 has nothing to compare with, audit 3 is checked."""
    stop = Seen(DRIFT, mode="min", patience=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cb = _fit(tmp_path, VECTORS, stop, max_epochs=6, fail_at=0)
    assert cb.audited_epochs == [1, 3, 5]
    assert stop.seen == [(5, pytest.approx(spearmanr(VECTORS[1], VECTORS[2]).statistic))]
    assert sum("logged no drift scalars" in str(w.message) for w in caught) == 1


def test_a_wrong_drift_tag_still_fails_at_the_second_audit(tmp_path):
    with pytest.raises(MisconfigurationException, match=r"drift/imp/spearmann'\) found no such scalar.*epoch 3"):
        _fit(tmp_path, VECTORS, AuditEarlyStopping(DRIFT + "n"))


@pytest.mark.parametrize("monitor", [None, 3, ""])
@pytest.mark.parametrize("cls", [AuditEarlyStopping, AuditModelCheckpoint])
def test_a_monitor_that_is_not_a_tag_is_refused_at_construction(cls, monitor):
    with pytest.raises(MisconfigurationException, match=rf"`monitor` of {cls.__name__} .*but got {monitor!r}"):
        cls(monitor)


def test_a_monitored_audit_that_never_runs_before_max_epochs_warns_at_setup(tmp_path):
    stop, ckpt = AuditEarlyStopping("causal/ranked/top", patience=1), AuditModelCheckpoint("causal/ranked/top", tmp_path / "c")
    with pytest.warns(UserWarning, match=r"AuditEarlyStopping\(monitor='causal/ranked/top'\) will check nothing.*"
                                         r"every_n_epochs=4.*max_epochs=3"):
        _fit(tmp_path, VECTORS, stop, ckpt, every=4, max_epochs=3)
    assert ckpt.best_model_path == ""  # what the warning announced: no checkpoint
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r"(?!.*will check nothing)")
        _fit(tmp_path, VECTORS, AuditEarlyStopping("causal/ranked/top"), every=4, max_epochs=4)  # epoch 3 audited


@pytest.mark.parametrize("option", ["every_n_epochs", "save_on_train_epoch_end", "every_n_train_steps", "train_time_interval"])
def test_the_checkpoint_accepts_lightnings_default_none_for_a_schedule_option(option):
    """``None`` is ModelCheckpoint's own default (no schedule given): it failed with 'got multiple values'."""
    ckpt = AuditModelCheckpoint("causal/ranked/top", **{option: None})
    assert ckpt._every_n_epochs == 1 and ckpt._save_on_train_epoch_end is True


def test_early_stopping_accepts_lightnings_default_none_for_check_on_train_epoch_end():
    assert AuditEarlyStopping("causal/ranked/top", check_on_train_epoch_end=None)._check_on_train_epoch_end is True
    with pytest.raises(MisconfigurationException, match="`check_on_train_epoch_end` to be True"):
        AuditEarlyStopping("causal/ranked/top", check_on_train_epoch_end=False)


@pytest.mark.parametrize("make", [lambda: EarlyStopping("causal/ranked/top"), lambda: ModelCheckpoint(monitor="causal/ranked/top")])
def test_lightnings_own_monitor_on_a_sparse_audit_is_told_which_class_to_use(tmp_path, make):
    """Lightning fails at epoch 0 asking whether the scalar was logged; the warning at set-up names the fix."""
    plain = make()
    with pytest.warns(UserWarning, match=rf"{type(plain).__name__}\(monitor='causal/ranked/top'\) reads .*every_n_epochs=2.*"
                                         rf"lightning_causal.Audit{type(plain).__name__}"):
        with pytest.raises(Exception, match="causal/ranked/top"):  # Lightning's own error, after the warning
            _fit(tmp_path, VECTORS, plain)


def test_no_advice_for_every_epoch_audits_or_an_audit_monitor(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r"(?!.*reads the scalar at every epoch end)")
        _fit(tmp_path, VECTORS, EarlyStopping("causal/ranked/top", check_on_train_epoch_end=True), every=1, max_epochs=2)
        _fit(tmp_path, VECTORS, AuditEarlyStopping("causal/ranked/top"), max_epochs=2)


def test_the_schedule_check_ignores_the_epochs_audited_by_an_earlier_fit(tmp_path):
    """The monitor's set-up may run before the audit callback's (which starts a new fit afresh)."""
    audit = CausalAuditCallback([RankedAudit(VECTORS)], every_n_epochs=2, probe_size=8, report_dir=tmp_path / "r")
    trainer(tmp_path, max_epochs=2, callbacks=[audit]).fit(classifier(), *loaders())
    assert audit.audited_epochs == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r"(?!.*will check nothing)")
        trainer(tmp_path, max_epochs=2, callbacks=[AuditEarlyStopping("causal/ranked/top"), audit]).fit(classifier(), *loaders())


def test_a_fit_resumed_after_the_fit_end_audit_drifts_as_the_uninterrupted_fit(tmp_path):
    """Audits every 2nd epoch: epoch 1, then epoch 2 at the end of a 3-epoch fit. A 5-epoch fit
    resumed from a checkpoint saved after that fit-end audit compares epoch 3 with epoch 1, as the
    uninterrupted fit does (Lightning's last.ckpt is saved in on_train_end, after it)."""
    def fit(root, max_epochs, ckpt_path=None):
        cb = CausalAuditCallback([RankedAudit(VECTORS)], every_n_epochs=2, probe_size=8, report_dir=root / "r")
        t = trainer(root, max_epochs=max_epochs, callbacks=[cb])
        t.fit(classifier(), *loaders(), ckpt_path=ckpt_path)
        return t, cb

    _, whole = fit(tmp_path / "a", 5)
    t, first = fit(tmp_path / "b", 3)
    assert first.audited_epochs == [1, 2]  # epoch 2: the fit-end audit
    t.save_checkpoint(tmp_path / "b" / "after.ckpt")
    _, resumed = fit(tmp_path / "b", 5, ckpt_path=tmp_path / "b" / "after.ckpt")
    assert [e for e in whole.audited_epochs] == [1, 3, 4] and resumed.audited_epochs == [1, 2, 3, 4]
    drift = {k: v for k, v in whole.last_results["ranked"].scalars.items() if "drift" in k}
    assert drift == {k: v for k, v in resumed.last_results["ranked"].scalars.items() if "drift" in k}
    assert drift["drift/imp/spearman"] == pytest.approx(spearmanr(VECTORS[1], VECTORS[2]).statistic)


def test_no_advice_from_a_sparse_callback_for_a_tag_shared_by_all_callbacks(tmp_path):
    """``compare/...`` (CaptumBaseline) may come from a dense callback: the sparse one does not claim it."""
    sparse = CausalAuditCallback([RankedAudit(VECTORS)], every_n_epochs=2, probe_size=8, report_dir=tmp_path / "r")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r"(?!.*reads the scalar at every epoch end)")
        sparse.setup(trainer(tmp_path, callbacks=[sparse, EarlyStopping("compare/deletion_auc_gap")]), classifier(), "fit")


def test_a_monitor_tag_missing_from_the_dry_run_warns_before_training(tmp_path):
    """Audits every 2nd epoch, 1 epoch: no scheduled audit, yet the typo is reported before training."""
    with pytest.warns(UserWarning, match=r"AuditEarlyStopping\(monitor='causal/ranked/tops'\) is not among the scalars of the "
                                         r"audits' dry run.*\['causal/ranked/top'\]"):
        _fit(tmp_path, VECTORS, AuditEarlyStopping("causal/ranked/tops"), max_epochs=1)


@pytest.mark.parametrize("monitor", ["causal/ranked/top", DRIFT])
def test_no_dry_run_warning_for_a_tag_the_audit_logs_or_a_drift_tag(tmp_path, monitor):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r"(?!.*dry run before training)")
        _fit(tmp_path, VECTORS, AuditEarlyStopping(monitor), max_epochs=2)
