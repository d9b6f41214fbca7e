"""CLI trial (resume): two audit callbacks on different schedules, AuditEarlyStopping and
AuditModelCheckpoint on one's scalar share one checkpoint; a fit resumed from an
epoch-end checkpoint goes on as the uninterrupted fit: weights, every report (drift included) and
the monitors' state (patience count, best score and path)."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_causal import (
    AuditEarlyStopping,
    AuditModelCheckpoint,
    CausalAuditCallback,
    InputEffectAudit,
    UnitImportanceAudit,
)
from tests.helpers.lightning import classifier, loaders, reports, trainer

_SHARE = "causal/input_effect/top5_share"


def _fit(root, reports_dir, max_epochs: int, ckpt_path=None):  # noqa: ANN001, ANN202
    train, val = loaders(shuffle=False)  # the same batches after a resume (the global RNG is not checkpointed)
    callbacks = [
        CausalAuditCallback([InputEffectAudit(patch_size=2, ace_values=None)], probe_size=16, report_dir=reports_dir),
        CausalAuditCallback([UnitImportanceAudit(["model.conv2"], top_k=3)], every_n_epochs=2, probe_size=16,
                            report_dir=reports_dir),
        AuditEarlyStopping(_SHARE, mode="min", patience=5),  # min: the best is an audit before the cut (epoch 1)
        AuditModelCheckpoint(_SHARE, mode="min", dirpath=root / "best"),
        ModelCheckpoint(dirpath=root / "every", filename="{epoch}", save_top_k=-1),
    ]
    t = trainer(root, max_epochs=max_epochs, callbacks=callbacks, enable_checkpointing=True)
    model = classifier()
    t.fit(model, train, val, ckpt_path=ckpt_path)
    return model, callbacks


def test_two_audit_callbacks_and_their_monitors_resume_as_the_uninterrupted_fit(tmp_path):
    whole, whole_cbs = _fit(tmp_path, tmp_path / "whole_reports", max_epochs=4)
    cut = tmp_path / "every" / "epoch=1.ckpt"  # saved at epoch 1's end, after its audits (checkpoint callbacks run last)
    state = torch.load(cut, weights_only=True)["callbacks"]
    assert {k for k in state if k.startswith("CausalAuditCallback")} == {
        "CausalAuditCallback{'audits': ['input_effect']}", "CausalAuditCallback{'audits': ['unit_importance']}"}
    resumed, resumed_cbs = _fit(tmp_path, tmp_path / "resumed_reports", max_epochs=4, ckpt_path=cut)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert [cb.audited_epochs for cb in resumed_cbs[:2]] == [[0, 1, 2, 3], [1, 3]]
    full, part = reports(tmp_path / "whole_reports"), reports(tmp_path / "resumed_reports")
    assert sorted(part) == ["epoch_0002.json", "epoch_0003.json", "epoch_0003_unit_importance.json"]  # none audited twice
    for name, doc in part.items():
        assert {a: r["scalars"] for a, r in doc["audits"].items()} == {a: r["scalars"] for a, r in full[name]["audits"].items()}
    # the drift bases came back from the checkpoint: epoch 2 is compared with epoch 1, epoch 3's units with epoch 1's
    assert "drift/mean_abs_effect/spearman" in part["epoch_0002.json"]["audits"]["input_effect"]["scalars"]
    assert "drift/importance/model.conv2/spearman" in part["epoch_0003_unit_importance.json"]["audits"]["unit_importance"]["scalars"]
    stop, best = resumed_cbs[2], resumed_cbs[3]
    assert stop.wait_count == whole_cbs[2].wait_count and torch.equal(stop.best_score, whole_cbs[2].best_score)
    assert best.best_model_path == whole_cbs[3].best_model_path  # an epoch before the cut: restored, not saved again
    assert torch.equal(best.best_model_score, whole_cbs[3].best_model_score)


def _mid_epoch_fit(root, audit: bool, validate: bool, ckpt_path=None):  # noqa: ANN001, ANN202
    train, val = loaders(batch_size=16, shuffle=True)  # 6 batches an epoch, shuffled by the global RNG
    callbacks = [ModelCheckpoint(dirpath=root / "steps", filename="{step}", every_n_train_steps=4, save_top_k=-1)]
    if audit:
        callbacks.insert(0, CausalAuditCallback([InputEffectAudit(patch_size=2, ace_values=None)], probe_size=16,
                                                report_dir=root / "reports"))
    t = trainer(root, max_epochs=3, callbacks=callbacks, enable_checkpointing=True)
    model = classifier(seed=1)
    t.fit(model, train, val if validate else None, ckpt_path=ckpt_path)
    return model


@pytest.mark.parametrize("validate", [True, False], ids=["probe from the validation data", "probe from the training data"])
def test_a_mid_epoch_resume_with_the_audits_equals_the_same_resume_without_them(tmp_path, validate):
    """A resume from a mid-epoch checkpoint (step 4 of 6 in epoch 0) is not the uninterrupted fit
    (Lightning restarts the epoch's data and does not checkpoint the global RNG that shuffles it), but the
    audits add nothing to that: the resumed fit with them gives the weights of the resumed fit without them."""
    fits = {}
    for audit in (True, False):
        root = tmp_path / f"audit={audit}"
        _mid_epoch_fit(root, audit, validate)
        fits[audit] = _mid_epoch_fit(root, audit, validate, ckpt_path=root / "steps" / "step=4.ckpt")
    for (name, a), b in zip(fits[True].state_dict().items(), fits[False].state_dict().values()):
        assert torch.equal(a, b), name
