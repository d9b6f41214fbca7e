"""A logger's error while an audit epoch is logged and drawn (a full disk under TensorBoard's writer), after the audits
ran and the report was written (newuser53's leftover after d0998636): with ``on_error="warn"`` the fit stopped with the
writer's bare ``OSError``, naming neither the audit nor its logging; with ``"raise"`` too. ``"warn"`` now goes on with a
warning naming the epoch, what was being logged and the error (the epoch stays audited, its values in its report);
``"raise"`` stops with a ``RuntimeError`` saying so, the error chained, the epoch left unrecorded (d0998636)."""

from __future__ import annotations

import errno
import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.tensorboard import SummaryWriter

from lightning_causal import CausalAuditCallback, InputEffectAudit
from tests.helpers.lightning import SgdMlp

FULL = OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def full_disk_at_second_audit(monkeypatch):
    """TensorBoard's histograms fail from the second audit step on (epoch 1's content; epoch 0's drawn whole)."""
    steps, real = [], SummaryWriter.add_histogram

    def add_histogram(self, tag, values, global_step=None, *args, **kwargs):
        if tag.startswith("causal/"):
            steps.append(global_step) if global_step not in steps else None
            if steps.index(global_step) >= 1:
                raise FULL
        return real(self, tag, values, global_step, *args, **kwargs)

    monkeypatch.setattr(SummaryWriter, "add_histogram", add_histogram)


def _fit(root, on_error, logger):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(48, 5, generator=g)
    y = (x[:, 0] - x[:, 3] > 0).long() + (x[:, 1] > 1).long()
    pl.seed_everything(0, verbose=False)
    callback = CausalAuditCallback(InputEffectAudit(ace_values=None), probe_size=16, on_error=on_error,
                                   report_dir=root / "reports")
    trainer = pl.Trainer(max_epochs=3, callbacks=[callback], logger=logger, accelerator="cpu", devices=1,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         deterministic=True)
    trainer.fit(SgdMlp(), torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:32], y[:32]), batch_size=8))
    return callback, trainer


def test_a_full_disk_under_tensorboard_with_on_error_warn_is_said_and_the_fit_goes_on(tmp_path, full_disk_at_second_audit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callback, trainer = _fit(tmp_path, "warn", TensorBoardLogger(tmp_path, name="tb"))  # before: OSError raised here
    said = [str(w.message) for w in caught if "could not be logged" in str(w.message)]
    assert len(said) == 2  # epochs 1 and 2
    assert said[0].startswith(f"Causal audit of epoch 1 ran (its JSON report is written: {callback.report_dir}) but could "
                              "not be logged: drawing its TensorBoard content (histograms, figures, text card) raised "
                              "OSError(28, 'No space left on device'); training continues")
    assert trainer.current_epoch == 3 and callback.audited_epochs == [0, 1, 2] and callback.failed_epochs == []


def test_a_loggers_error_with_on_error_raise_names_the_logging_and_leaves_the_epoch_unrecorded(tmp_path, monkeypatch):
    def log_metrics(self, metrics, step=None):
        if any(k.startswith("causal/") for k in metrics):
            raise FULL

    monkeypatch.setattr(CSVLogger, "log_metrics", log_metrics)
    with pytest.raises(RuntimeError) as info:  # before: the logger's bare OSError
        _fit(tmp_path, "raise", CSVLogger(tmp_path))
    assert str(info.value).startswith("Causal audit of epoch 0 ran (its JSON report is written: ")
    assert str(info.value).endswith("but could not be logged: logging its scalars to CSVLogger raised OSError(28, 'No "
                                    "space left on device'); pass `on_error='warn'` to go on without it")
    assert info.value.__cause__ is FULL
