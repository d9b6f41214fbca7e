"""The console cost line of an audit epoch left out the drawing of its TensorBoard content (newuser18 long-run
trial). On a digits CNN with seven audits and a ``TensorBoardLogger``, the audits took 0.75 s an epoch and the
figures drawn after them 2.1-2.6 s, outside ``causal/audit_seconds`` and outside the line: the line stayed
silent (0.75 s is under its 2 s threshold) for an audit epoch that cost 3 s, four times the training it
followed. The drawing is now timed, counted against the threshold and the ratio, and named in the line."""

from __future__ import annotations

import logging
import re
import time

import pytest
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_causal import CausalAuditCallback
from lightning_causal.callbacks import _audit_run
from lightning_causal.callbacks._audit_run import cost_line
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.helpers.lightning import SleepAudit, classifier, loaders, trainer

DRAWING = 0.4  # seconds the stand-in drawing takes


def test_cost_line_adds_the_drawing_to_the_audits():
    line = cost_line(2, 0.5, {"a": 0.4, "b": 0.1}, 1.0, drawn=2.5)
    assert line.startswith("Causal audit at epoch 2 took 0.5 s (a 0.4 s, b 0.1 s), and drawing its TensorBoard content 2.5 s more "
                           "(3.0 s in all), 3.0x the 1.0 s the fit spent")
    assert "the drawing grows with the audits' figures" in line  # the drawing outlasts the audits: say what lowers it
    assert "drawing" not in cost_line(2, 0.5, {"a": 0.5}, 1.0)  # no TensorBoard content drawn: as before


def test_an_epoch_whose_drawing_outlasts_the_threshold_is_reported_with_it(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(_audit_run, "SLOW_AUDIT_SECONDS", 0.3)  # audits of 0 s, a drawing of 0.4 s
    real = TensorBoardRenderer.render

    def slow_render(self, *args, **kwargs):
        time.sleep(DRAWING)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TensorBoardRenderer, "render", slow_render)
    callback = CausalAuditCallback([SleepAudit("quick", 0.0)], probe_size=8)
    t = trainer(tmp_path, max_epochs=1, callbacks=[callback], limit_train_batches=1, limit_val_batches=1,
                logger=TensorBoardLogger(tmp_path, name="tb"))
    with caplog.at_level(logging.INFO):
        t.fit(classifier(), *loaders())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Causal audit at epoch")]
    assert len(lines) == 1, lines  # before: no line (the audits alone took 0.0 s)
    found = re.search(r"took ([\d.]+) s, and drawing its TensorBoard content ([\d.]+) s more \(([\d.]+) s in all\)", lines[0])
    assert found is not None, lines[0]
    audits, drawn, whole = map(float, found.groups())
    # no upper bound on the times (a loaded CI machine): the drawing holds the sleep, the audits do not
    assert audits < DRAWING <= drawn and whole == pytest.approx(audits + drawn, abs=0.1)
    assert callback.last_scalars["causal/audit_seconds"] < DRAWING  # the logged time stays the audits' own
