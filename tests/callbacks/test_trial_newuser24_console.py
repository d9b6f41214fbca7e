"""The callback's console lines beside Lightning's progress bars (newuser24 trial, a fit watched in a terminal).

The cost line of a slow audit epoch and the "no TensorBoardLogger" note went through ``rank_zero_info``, whose logging
handler writes to the terminal behind the bar: under ``TQDMProgressBar`` the line began at the end of the bar's last
line (the audits' own bar had just closed one line below, leaving the cursor at its right end), under
``RichProgressBar`` it was appended to the live display's line (``... 43.08it/s Causal audit at epoch 0 took ...``).
They now go through the bar (``tqdm.write``, which clears Lightning's bars, writes the line and draws them again; the
bar's ``print`` otherwise, which a rich live display prints above itself); the audits' own tqdm bar is drawn beside
Lightning's tqdm bars only (under rich it left a stale line; a task of the live display shows the audits there)."""

from __future__ import annotations

import io
import logging

import rich
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

from lightning_causal import CausalAuditCallback
from lightning_causal.callbacks import _audit_run
from tests.helpers.lightning import SleepAudit, classifier, loaders, trainer


def _fit(tmp_path, bar, monkeypatch):
    monkeypatch.setattr(_audit_run, "SLOW_AUDIT_SECONDS", -1.0)  # every audit epoch prints its cost line
    callback = CausalAuditCallback([SleepAudit("quick", 0.0)], probe_size=4)
    t = trainer(tmp_path, max_epochs=1, callbacks=[bar, callback], enable_progress_bar=True, limit_train_batches=2,
                limit_val_batches=1)
    t.fit(classifier(), *loaders())


def test_under_tqdm_the_lines_are_written_through_the_bar_at_the_start_of_a_cleared_line(tmp_path, monkeypatch, capsys, caplog):
    with caplog.at_level(logging.INFO):
        _fit(tmp_path, TQDMProgressBar(), monkeypatch)
    out = capsys.readouterr().out  # Lightning's tqdm bars write to sys.stdout
    for line in ("CausalAuditCallback: no TensorBoardLogger", "Causal audit at epoch 0 took"):
        at = out.find(line)
        assert at > 0, f"{line!r} not written with the bars"
        cleared = out[:at].rsplit("\r", 2)  # tqdm.write: the bar's line overwritten by spaces, back to its start
        assert out[at - 1] == "\r" and cleared[-2].strip() == "", repr(out[at - 200:at])
        assert out[at:].split("\n", 1)[1].startswith("\rEpoch 0"), "the bar is drawn again below the line"
    assert not [r for r in caplog.records if r.getMessage().startswith("Causal audit at epoch")]  # not twice


def test_under_rich_the_lines_are_printed_by_the_live_display_on_lines_of_their_own(tmp_path, monkeypatch):
    screen = io.StringIO()
    saved = dict(rich.get_console().__dict__)  # RichProgressBar reconfigures rich's global console
    try:
        _fit(tmp_path, RichProgressBar(console_kwargs=dict(file=screen, force_terminal=True, width=100)), monkeypatch)
    finally:
        rich.get_console().__dict__.update(saved)
    text = screen.getvalue()
    for line in ("CausalAuditCallback: no TensorBoardLogger", "Causal audit at epoch 0 took"):
        at = text.find(line)
        assert at > 0, f"{line!r} not printed by the live display"
        assert text[at - 1] == "\n" or text[:at].endswith("\x1b[2K"), repr(text[at - 120:at])  # a line of its own


def test_the_audits_own_tqdm_bar_is_drawn_beside_lightnings_tqdm_bar_only(tmp_path, monkeypatch):
    import tqdm.auto

    made = []

    class Spy(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            made.append(kwargs.get("disable", False))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", Spy)
    saved = dict(rich.get_console().__dict__)
    try:
        _fit(tmp_path / "rich", RichProgressBar(console_kwargs=dict(file=io.StringIO(), force_terminal=True)), monkeypatch)
    finally:
        rich.get_console().__dict__.update(saved)
    _fit(tmp_path / "tqdm", TQDMProgressBar(), monkeypatch)
    assert made == [False]  # none under rich, whose live display shows a task instead (test_fixes_ux_audit_progress.py)


def test_the_set_up_note_of_a_cut_probe_is_written_through_the_bar(tmp_path, capsys):
    """At ``on_train_start`` Lightning's tqdm bar already shows ``Training: 0/?``; the note began at its right end."""
    x, y = next(iter(loaders()[1]))
    callback = CausalAuditCallback([SleepAudit("quick", 0.0)], probe=(x[:6], y[:6]), probe_size=4)
    trainer(tmp_path, max_epochs=1, callbacks=[TQDMProgressBar(), callback], enable_progress_bar=True,
            limit_train_batches=1, limit_val_batches=1).fit(classifier(), *loaders())
    out = capsys.readouterr().out
    at = out.find("CausalAuditCallback audits the first 4 of the 6 samples of `probe`")
    assert at > 0 and out[at - 1] == "\r" and out[:at].rsplit("\r", 2)[-2].strip() == "", repr(out[max(at - 200, 0):at])
