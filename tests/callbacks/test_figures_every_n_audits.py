"""``CausalAuditCallback(figures_every_n_audits=n)``: the figures and images of every n-th audit only (and of the
first and the last), the scalars, histograms and text card of every audit. A long run's event file is nearly all
figures, and their drawing took several times the audits (the newuser18 long-run trial: 455 kB and 2 s an epoch)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import UnitImportanceAudit
from tests.helpers.lightning import classifier, loaders, trainer

BARS = "causal/unit_importance/bars/importance/model.conv2"


def _steps(root, every: int, max_epochs: int, fit: dict | None = None, **schedule):
    cb = CausalAuditCallback([UnitImportanceAudit(["model.conv2"])], probe_size=8, figures_every_n_audits=every, **schedule)
    t = trainer(root, max_epochs=max_epochs, callbacks=[cb], logger=TensorBoardLogger(root, name="", version=""), **(fit or {}))
    t.fit(classifier(), *loaders())
    acc = EventAccumulator(str(root), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    audited = [e.step for e in acc.Scalars("causal/audit_seconds")]
    drawn = [e.step for e in acc.Images(BARS)]
    hist = [e.step for e in acc.Histograms("causal/unit_importance/histograms/importance/model.conv2")]
    card = [e.step for e in acc.Tensors("causal/summary/text_summary")]
    return cb, audited, drawn, hist, card


def test_figures_are_drawn_at_every_nth_audit_and_the_last_the_rest_every_audit(tmp_path):
    cb, audited, drawn, hist, card = _steps(tmp_path, 3, 6)
    assert cb.audited_epochs == [0, 1, 2, 3, 4, 5]
    assert len(audited) == 6 and hist == audited and card == audited
    assert drawn == [audited[0], audited[3], audited[5]]  # the 1st, the 4th and the last epoch's


def test_the_fit_end_audit_of_an_epoch_off_the_schedule_is_drawn(tmp_path):
    cb, audited, drawn, _, _ = _steps(tmp_path, 5, 4, every_n_epochs=2)  # epochs 1, 3 on schedule: 3 is the last
    assert cb.audited_epochs == [1, 3] and drawn == audited
    cb, audited, drawn, _, _ = _steps(tmp_path / "off", 5, 3, every_n_epochs=2)  # epoch 1, then epoch 2 at fit end
    assert cb.audited_epochs == [1, 2] and drawn == audited
    # a fit stopped before max_epochs (max_steps: in epoch 2 of 6): its fit-end audit, the 2nd, is drawn for being the fit's end
    cb, audited, drawn, _, _ = _steps(tmp_path / "steps", 5, 6, fit={"max_steps": 5, "limit_train_batches": 2}, every_n_epochs=2)
    assert cb.audited_epochs == [1, 2] and drawn == audited


class _StopAfter(pl.Callback):
    """Early stopping's effect: training stops at the end of epoch ``epoch`` (after the audit callback's hook)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = trainer.should_stop or trainer.current_epoch == self.epoch


def test_the_last_audit_of_a_fit_stopped_early_is_drawn_when_training_ends(tmp_path):
    cb = CausalAuditCallback([UnitImportanceAudit(["model.conv2"])], probe_size=8, figures_every_n_audits=5)
    t = trainer(tmp_path, max_epochs=6, callbacks=[cb, _StopAfter(2)], logger=TensorBoardLogger(tmp_path, name="", version=""))
    t.fit(classifier(), *loaders())
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    audited, drawn = [e.step for e in acc.Scalars("causal/audit_seconds")], [e.step for e in acc.Images(BARS)]
    assert cb.audited_epochs == [0, 1, 2]  # stopped after epoch 2, audited there: no fit-end audit
    assert drawn == [audited[0], audited[2]]  # the first, and the last (at its own step) when training ended


def test_the_default_draws_every_audit(tmp_path):
    cb, audited, drawn, _, _ = _steps(tmp_path, 1, 3)
    assert len(audited) == 3 and drawn == audited


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None, "2"])
def test_figures_every_n_audits_must_be_a_positive_int(bad):
    with pytest.raises(MisconfigurationException, match="figures_every_n_audits"):
        CausalAuditCallback([UnitImportanceAudit(["model.conv2"])], figures_every_n_audits=bad)
