"""Lightning's own EarlyStopping / ModelCheckpoint on a causal scalar of every-epoch audits (found by
the schedules trial).

With audits every epoch and validation once an epoch at its end, Lightning's monitors read the
scalar at the end of the training epoch, after the audit: right. Where they read it when validation
ends (``check_val_every_n_epoch=2``, ``val_check_interval=0.5``, ``check_on_train_epoch_end=False``),
that is before the audit of the epoch: a ``ModelCheckpoint`` saved epoch 1's weights scored with epoch
0's audit, silently, and ``EarlyStopping`` raised Lightning's "metric not available" at the first
validation. The advice at set-up was given for sparse schedules only; it now covers these too.
"""

import warnings
from datetime import timedelta

import lightning
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.reporting.json_report import load_report
from tests.helpers.lightning import quick_trainer, small_module, synthetic_loaders

MONITOR = "causal/input_effect/mean_abs_effect"
_LIGHTNING = tuple(int(part) for part in lightning.__version__.split(".")[:2])


def _audit(tmp_path) -> CausalAuditCallback:
    return CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], probe_size=8, report_dir=tmp_path / "r")


@pytest.mark.parametrize("kind, trainer_options, monitor_options, why", [
    (kind, trainer_options, {}, why) for kind in (EarlyStopping, ModelCheckpoint)
    for trainer_options, why in ((dict(check_val_every_n_epoch=2), "check_val_every_n_epoch=2"),
                                 (dict(val_check_interval=0.5), "val_check_interval=0.5"))
] + [
    (EarlyStopping, {}, dict(check_on_train_epoch_end=False), "check_on_train_epoch_end=False"),
    (ModelCheckpoint, {}, dict(save_on_train_epoch_end=False), "save_on_train_epoch_end=False"),
    pytest.param(ModelCheckpoint, dict(val_check_interval=timedelta(minutes=5)), {}, "a time-based val_check_interval",
                 marks=pytest.mark.skipif(_LIGHTNING < (2, 6), reason="a time-based val_check_interval is new in Lightning 2.6")),
])
def test_a_lightning_monitor_that_reads_when_validation_ends_is_told_which_class_to_use(tmp_path, kind, trainer_options,
                                                                                        monitor_options, why):
    audit = _audit(tmp_path)
    plain = kind(monitor=MONITOR, mode="max", **monitor_options)
    trainer = quick_trainer(default_root_dir=tmp_path, callbacks=[audit, plain], enable_checkpointing=True, limit_train_batches=0,
                            **trainer_options)  # no training: the advice comes at set-up
    with pytest.warns(UserWarning, match=rf"{kind.__name__}\(monitor='{MONITOR}'\) reads the scalar when validation ends "
                                         rf"\({why}\).*lightning_causal.Audit{kind.__name__}"):
        trainer.fit(small_module(), *synthetic_loaders())  # before the fix: no warning (every_n_epochs=1)


def test_every_epoch_audits_and_end_of_epoch_validation_need_no_advice_and_score_each_checkpoint_by_its_audit(tmp_path):
    audit = _audit(tmp_path)
    checkpoint = ModelCheckpoint(tmp_path / "ckpt", monitor=MONITOR, mode="max", save_top_k=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r"(?!.*reads the scalar)")
        quick_trainer(default_root_dir=tmp_path, callbacks=[audit, checkpoint], max_epochs=2, enable_checkpointing=True,
                      limit_train_batches=2).fit(small_module(), *synthetic_loaders())
    assert audit.audited_epochs == [0, 1]
    for path, score in checkpoint.best_k_models.items():  # the score of each saved epoch is that epoch's audit
        epoch = torch.load(path, weights_only=False)["epoch"]
        report = load_report(tmp_path / "r" / f"epoch_{epoch:04d}.json")
        assert float(score) == pytest.approx(report["audits"]["input_effect"]["scalars"]["mean_abs_effect"], rel=1e-6)
