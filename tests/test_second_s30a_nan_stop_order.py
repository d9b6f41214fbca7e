"""Review of 178214cd: ``AuditEarlyStopping`` warned of its stop at a NaN value only where no callback before it had
set ``trainer.should_stop`` in the same epoch: listed after Lightning's own ``EarlyStopping`` on the same scalar
(``check_on_train_epoch_end=True``, which stops there silently) the fit ended at its first audit with no word of
the stop. The warning now follows this callback's own decision (Lightning's non-finite criterion), once a fit
(under ``min_epochs`` Lightning trains on and the check stops again at every audit)."""

import warnings

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import AuditEarlyStopping, CausalAuditCallback, UnitImportanceAudit
from tests.test_review_s30b_nan_monitor_stop import MONITOR, _NaNUnit

SAID = f"AuditEarlyStopping(monitor={MONITOR!r}) stopped training after the audit of epoch 0"
# under min_epochs the check asks, Lightning trains on (leftovers_s30e: the words say so)
ASKED = f"AuditEarlyStopping(monitor={MONITOR!r}) asked training to stop after the audit of epoch 0"


def _fit(tmp_path, stops: list[pl.Callback], **trainer_kw) -> tuple[list[int], list[str]]:  # noqa: ANN001, ANN003
    torch.manual_seed(0)
    x = torch.randn(16, 4)
    audit = CausalAuditCallback([UnitImportanceAudit(["h"], target=1)], probe_size=8, report_dir=tmp_path)
    trainer = pl.Trainer(max_epochs=3, callbacks=[audit, *stops], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, **trainer_kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_NaNUnit(), DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8))
    return audit.audited_epochs, [str(w.message).split(":")[0] for w in caught if str(w.message).startswith("AuditEarlyStopping(")]



def test_said_after_lightnings_early_stopping_on_the_same_scalar(tmp_path):
    stops = [EarlyStopping(MONITOR, mode="max", check_on_train_epoch_end=True), AuditEarlyStopping(MONITOR, mode="max")]
    epochs, said = _fit(tmp_path, stops)
    assert epochs == [0] and said == [SAID]  # before: [] (should_stop was Lightning's EarlyStopping's already)


def test_said_once_where_min_epochs_trains_on(tmp_path):
    epochs, said = _fit(tmp_path, [AuditEarlyStopping(MONITOR, mode="max")], min_epochs=3)
    assert epochs == [0, 1, 2] and said == [ASKED]
