"""A fit resumed from the checkpoint ``OnExceptionCheckpoint`` wrote when an audit failed (newuser24 trial: a
transient error in epoch 1's audit, ``on_error="raise"``, the fit resumed with ``ckpt_path=`` once fixed). That
checkpoint is written inside epoch 1's ``on_train_epoch_end``, before its audit was recorded: Lightning resumes at
epoch 2 and calls no ``on_train_epoch_end`` for epoch 1 (its restart stage ``resumed_on_epoch_end``), so epoch 1 was
never audited, in silence (audited epochs [0, 2], no report of epoch 1, epoch 2's drift against epoch 0). The
weights restored are epoch 1's end weights: the callback audits it when the resumed fit starts, as it does for a
checkpoint of an epoch's last batch (test_trial_loops_resume_last_batch.py)."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import Audit, AuditResult, InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.reporting.json_report import load_report
from tests.helpers.lightning import SgdMlp


class _FailsOnce(Audit):
    """Raises at its ``fail_at``-th run (the dry run at set-up is the 0th), then never again."""

    def __init__(self, fail_at: int | None) -> None:
        super().__init__("fails_once")
        self.fail_at, self.runs = fail_at, 0

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:
        self.runs += 1
        if self.runs - 1 == self.fail_at:
            raise RuntimeError("transient")
        return AuditResult(self.name, scalars={"ok": 1.0})


def _fit(root, fail_at=None, ckpt_path=None):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(48, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    pl.seed_everything(0, verbose=False)
    module = _Net()
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None), _FailsOnce(fail_at)], probe_size=16,
                                report_dir=root / "reports")
    trainer = pl.Trainer(max_epochs=3, callbacks=[audit, OnExceptionCheckpoint(root / "exc", filename="exc")],
                         accelerator="cpu", devices=1, default_root_dir=root, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True)
    trainer.fit(module, DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8),
                DataLoader(TensorDataset(x[32:], y[32:]), batch_size=8), ckpt_path=ckpt_path)
    return audit, module


_Net = SgdMlp  # Linear(5, 8) -> ReLU -> Linear(8, 3), SGD


def test_the_epoch_whose_audit_failed_is_audited_when_the_fit_resumes_from_the_exception_checkpoint(tmp_path):
    with pytest.raises(RuntimeError, match="Causal audit 'fails_once' failed at epoch 1: transient"):
        _fit(tmp_path / "failed", fail_at=2)  # runs: 0 the dry run, 1 epoch 0, 2 epoch 1
    path = tmp_path / "failed" / "exc" / "exc.ckpt"
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 1 and saved["callbacks"][next(k for k in saved["callbacks"] if "Causal" in k)]["audited_epochs"] == [0]
    resumed, module = _fit(tmp_path / "resumed", ckpt_path=path)
    whole, reference = _fit(tmp_path / "whole")
    assert resumed.audited_epochs == whole.audited_epochs == [0, 1, 2]  # before the fix: [1 missing] [2]
    for epoch in (1, 2):  # epoch 1 on the checkpoint's weights (its end's); epoch 2's drift against epoch 1's
        a = load_report(tmp_path / "whole" / "reports" / f"epoch_{epoch:04d}.json")["audits"]["input_effect"]["scalars"]
        b = load_report(tmp_path / "resumed" / "reports" / f"epoch_{epoch:04d}.json")["audits"]["input_effect"]["scalars"]
        assert a == b, epoch
    for name, value in reference.state_dict().items():
        assert torch.equal(module.state_dict()[name], value), name
