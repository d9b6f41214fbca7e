"""leftovers_s30e: (1) Lightning's own ``EarlyStopping`` on a causal scalar, read at the epoch's end right after the audit
(``check_on_train_epoch_end=True``, which the set-up advice leaves be on a dense schedule), stopped the fit at the first
audit whose value is NaN (``top1_importance`` where a unit's ablation makes the output NaN) with no word: Lightning says
why only under ``verbose=True``. The audit callback now warns, once a fit, as ``AuditEarlyStopping`` warns of its own
such stop. (2) ``AuditEarlyStopping``'s warning said it "stopped training after the audit of epoch 0" also under
``Trainer(min_epochs=3)``, where Lightning trains on until the minimum is met: both warnings now say so."""

import warnings

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import AuditEarlyStopping, CausalAuditCallback, UnitImportanceAudit
from tests.test_review_s30b_nan_monitor_stop import MONITOR, _NaNUnit

VALUE = (": the audit's value is nan (`check_finite=True`, Lightning's default, stops at a NaN or infinite value{quiet})"
         "{later}; the audit's warning of NaN or infinite values says where it comes from. Pass `check_finite=False` to "
         "count such an audit as no improvement and train on")
QUIET = ", and says so only under `verbose=True`"
LATER = "; Trainer(min_epochs=3) is not met yet: Lightning trains on until it is, and stops then"


def _fit(tmp_path, stops: list[pl.Callback], nan_unit: bool = True, first: bool = False,  # noqa: ANN001
         **trainer_kw) -> tuple[list[int], list[str]]:  # noqa: ANN003
    torch.manual_seed(0)
    x = torch.randn(16, 4)
    audit = CausalAuditCallback([UnitImportanceAudit(["h"], target=1)], probe_size=8, report_dir=tmp_path)
    trainer = pl.Trainer(max_epochs=4, callbacks=[*stops, audit] if first else [audit, *stops], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, **trainer_kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_NaNUnit(nan_unit), DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8))
    return audit.audited_epochs, [str(w.message) for w in caught if "EarlyStopping(monitor=" in str(w.message)]


def test_lightnings_early_stopping_at_a_nan_audit_is_said(tmp_path):
    for first in (False, True):  # Lightning calls EarlyStopping after the other callbacks: after the audit, wherever listed
        epochs, said = _fit(tmp_path, [EarlyStopping(MONITOR, mode="max", check_on_train_epoch_end=True)], first=first)
        assert epochs == [0]  # stopped at the first audit: top1_importance NaN
        assert said == [f"EarlyStopping(monitor={MONITOR!r}) stops training after the audit of epoch 0"
                        + VALUE.format(quiet=QUIET, later="")]  # before: nothing


def test_said_once_where_min_epochs_trains_on(tmp_path):
    epochs, said = _fit(tmp_path, [EarlyStopping(MONITOR, mode="max", check_on_train_epoch_end=True)], min_epochs=3)
    assert epochs == [0, 1, 2]  # Lightning trains on to min_epochs, the check asking again at every audit
    assert said == [f"EarlyStopping(monitor={MONITOR!r}) asks training to stop after the audit of epoch 0"
                    + VALUE.format(quiet=QUIET, later=LATER)]


def test_audit_early_stopping_under_min_epochs_says_it_trains_on(tmp_path):
    epochs, said = _fit(tmp_path, [AuditEarlyStopping(MONITOR, mode="max")], min_epochs=3)
    assert epochs == [0, 1, 2]
    assert said == [f"AuditEarlyStopping(monitor={MONITOR!r}) asked training to stop after the audit of epoch 0"
                    + VALUE.format(quiet="", later=LATER)]  # before: 'stopped training after the audit of epoch 0: ...'


def test_no_word_where_lightning_says_it_or_does_not_stop(tmp_path):
    # verbose=True: Lightning logs its reason itself; check_finite=False: a NaN audit is no improvement (patience 5: the
    # fit runs its 4 epochs); a finite unit: no NaN at all
    for stop, nan_unit in [(EarlyStopping(MONITOR, mode="max", check_on_train_epoch_end=True, verbose=True), True),
                           (EarlyStopping(MONITOR, mode="max", check_on_train_epoch_end=True, check_finite=False, patience=5), True),
                           (EarlyStopping(MONITOR, mode="max", check_on_train_epoch_end=True, patience=5), False)]:
        epochs, said = _fit(tmp_path, [stop], nan_unit)
        assert said == [] and epochs == ([0] if stop.verbose else [0, 1, 2, 3])
