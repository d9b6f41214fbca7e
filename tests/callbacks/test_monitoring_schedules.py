"""AuditEarlyStopping and AuditModelCheckpoint beside two CausalAuditCallbacks on different schedules
(the recipe's every-epoch audits plus sparse ones): a monitor follows the callback whose audits log
it, so the other callback's audits neither trigger a check nor make the scalar look missing."""

from __future__ import annotations

import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal import AuditEarlyStopping, AuditModelCheckpoint, CausalAuditCallback
from lightning_causal.audits.base import Audit, AuditResult
from tests.callbacks.test_monitoring import SCRIPT, TAG, ScriptedAudit
from tests.helpers.lightning import classifier, loaders, trainer


class DenseAudit(Audit):
    """An every-epoch audit whose scalar keeps falling (improving under ``mode="min"``)."""

    def __init__(self) -> None:
        super().__init__("dense")
        self.calls = 0

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:  # noqa: ANN001
        self.calls += 1
        return AuditResult(self.name, scalars={"score": -float(self.calls)})


def _callbacks(root):
    dense = CausalAuditCallback([DenseAudit()], probe_size=8, report_dir=root / "dense")
    sparse = CausalAuditCallback([ScriptedAudit(SCRIPT)], every_n_epochs=3, probe_size=8, report_dir=root / "sparse")
    return dense, sparse


def test_patience_counts_the_sparse_audits_and_the_best_checkpoint_is_a_sparse_audit(tmp_path):
    dense, sparse = _callbacks(tmp_path)
    stop = AuditEarlyStopping(TAG, patience=2, mode="min")
    every = AuditModelCheckpoint(TAG, tmp_path / "all", save_top_k=-1, mode="min")
    t = trainer(tmp_path, max_epochs=20, callbacks=[dense, sparse, stop, every], enable_checkpointing=True)
    t.fit(classifier(), *loaders())
    assert dense.audited_epochs == list(range(12)) and sparse.audited_epochs == [2, 5, 8, 11]
    assert stop.stopped_epoch == 11 and stop.wait_count == 2  # two sparse audits without improvement
    assert float(stop.best_score) == pytest.approx(0.9)
    saved = sorted(int(p.name.split("-")[0].split("=")[1]) for p in (tmp_path / "all").iterdir())
    assert saved == [2, 5, 8, 11]  # one per sparse audit, none at the dense-only epochs
    assert every.best_model_path.endswith("epoch=5-step=18.ckpt") and float(every.best_model_score) == pytest.approx(0.9)


def test_the_dense_scalar_is_checked_at_every_dense_audit(tmp_path):
    dense, sparse = _callbacks(tmp_path)
    stop = AuditEarlyStopping("causal/dense/score", patience=1, mode="min")
    trainer(tmp_path, max_epochs=4, callbacks=[dense, sparse, stop]).fit(classifier(), *loaders())
    assert float(stop.best_score) == -dense.audits[0].calls and stop.wait_count == 0  # the last dense audit's value


@pytest.mark.parametrize("monitor", ["val_loss", "causal/unknown/score", "causal/scripted"])
def test_a_monitor_no_audit_logs_fails_at_setup_listing_the_audits(tmp_path, monitor):
    dense, sparse = _callbacks(tmp_path)
    for extra in (AuditEarlyStopping(monitor), AuditModelCheckpoint(monitor, tmp_path / "c")):
        match = rf"`monitor` of {type(extra).__name__}.*\['dense', 'scripted'\].*but got '{monitor}'"
        with pytest.raises(MisconfigurationException, match=match):
            trainer(tmp_path, callbacks=[dense, sparse, extra], enable_checkpointing=True).fit(classifier(), *loaders())
        assert dense.audited_epochs == [] and sparse.audited_epochs == []  # before any training


def test_owners_of_a_monitor(tmp_path):
    from lightning_causal.callbacks.monitoring import audit_owners

    dense, sparse = _callbacks(tmp_path)
    assert audit_owners(TAG, [dense, sparse, object()]) == [sparse]
    assert audit_owners("causal/dense/score", [dense, sparse]) == [dense]
    assert audit_owners("causal/audit_seconds", [dense, sparse]) == [dense]  # the first callback's time; the second's has its own tag
    assert audit_owners("compare/Saliency/deletion_auc", [dense, sparse]) == [dense, sparse]  # named by the method
    assert audit_owners("causal/densescore", [dense, sparse]) == []
