"""CLI trial (resume): two audit callbacks on different schedules, AuditEarlyStopping and
AuditModelCheckpoint on one's scalar share one checkpoint; a fit resumed from an
epoch-end checkpoint goes on as the uninterrupted fit: weights, every report (drift included) and
the monitors' state (patience count, best score and path)."""

from __future__ import annotations

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
