"""``Trainer(barebones=True)`` (no logging, for raw speed) with the audit callback (the loops trial): each audit
called ``pl_module.log_dict``, so Lightning warned "You are trying to `self.log()` but `Trainer(barebones=True)`
is configured" at every audit epoch of a module that logs nothing itself. The callback now leaves
``callback_metrics`` alone there; the audits run, their JSON reports are written and ``last_scalars`` holds the
values. ``AuditEarlyStopping``, which reads ``callback_metrics``, is refused at set-up under ``barebones``."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import AuditEarlyStopping, CausalAuditCallback
from lightning_causal.reporting.json_report import load_report
from tests.helpers.lightning import SgdMlp


def test_barebones_audits_without_a_logging_warning(tmp_path):
    x = torch.randn(24, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe=(x[:8], y[:8]), report_dir=tmp_path)
    trainer = pl.Trainer(barebones=True, max_epochs=2, callbacks=[audit], accelerator="cpu", devices=1,
                         default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(SgdMlp(features=4), DataLoader(TensorDataset(x, y), batch_size=8))
    assert not [str(w.message) for w in caught if "barebones" in str(w.message)]
    assert audit.audited_epochs == [0, 1]
    value = load_report(tmp_path / "epoch_0001.json")["audits"]["input_effect"]["scalars"]["mean_abs_effect"]
    assert audit.last_scalars["causal/input_effect/mean_abs_effect"] == value


def test_audit_early_stopping_under_barebones_is_refused_at_set_up(tmp_path):
    """Before: Lightning's "Early stopping conditioned on metric ... which is not available. Pass in or modify your
    `EarlyStopping` callback to use any of the following: ``" at the first audit, naming no cause."""
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe=(x[:8], y[:8]), report_dir=tmp_path)
    stop = AuditEarlyStopping("causal/input_effect/mean_abs_effect", patience=1)
    trainer = pl.Trainer(barebones=True, max_epochs=2, callbacks=[audit, stop], accelerator="cpu", devices=1,
                         default_root_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match=r"barebones=True.*last_scalars"):
        trainer.fit(SgdMlp(features=4), DataLoader(TensorDataset(x, y), batch_size=8))
    assert audit.audited_epochs == []
