"""Under ``RichProgressBar`` an audit epoch showed no progress (the audits' own tqdm bar was left off there, as it
left a stale line under the live display): the user saw nothing move for the audits' seconds. The audit epoch now adds
a task to the live display, named after the audit running, and removes it when the epoch ends; under
``TQDMProgressBar`` the audits' own tqdm bar names the audit running too."""

from __future__ import annotations

import io

import pytest
import rich
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import AuditResult
from lightning_causal.callbacks import _audit_run
from tests.helpers.lightning import SleepAudit, classifier, loaders, trainer


class _Looks(SleepAudit):
    """Records, while it runs, the tasks of the rich live display (description, completed, total, visible)."""

    def __init__(self, name: str, bar: RichProgressBar, seen: list) -> None:
        super().__init__(name, 0.0)
        self.bar, self.seen = bar, seen

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:  # noqa: ANN001
        self.seen.append([(t.description, t.completed, t.total, t.visible) for t in self.bar.progress.tasks])
        return super().run(model, probe, max_batch_size=max_batch_size)


@pytest.fixture
def rich_console():
    saved = dict(rich.get_console().__dict__)  # RichProgressBar reconfigures rich's global console
    yield
    rich.get_console().__dict__.update(saved)


def _fit(tmp_path, bar, audits) -> None:  # noqa: ANN001
    callback = CausalAuditCallback(audits, probe_size=4)
    trainer(tmp_path, max_epochs=1, callbacks=[bar, callback], enable_progress_bar=True, limit_train_batches=1,
            limit_val_batches=1).fit(classifier(), *loaders())


def test_under_rich_each_audit_is_shown_as_a_task_of_the_live_display_removed_after(tmp_path, rich_console):
    bar = RichProgressBar(console_kwargs=dict(file=io.StringIO(), force_terminal=True, width=120))  # theme: no style
    seen: list = []
    _fit(tmp_path, bar, [_Looks("first", bar, seen), _Looks("second", bar, seen)])
    ours = [[t for t in tasks if "causal audit" in t[0]] for tasks in seen]
    # the dry runs at set-up (2 samples each) show none; each of the epoch's audits shows itself, done of 2
    assert ours == [[], [], [("causal audit (epoch 0): first", 0, 2, True)], [("causal audit (epoch 0): second", 1, 2, True)]]
    assert not [t for t in bar.progress.tasks if "causal audit" in t.description]  # removed when the epoch ended


def test_under_rich_the_task_is_removed_when_an_audit_raises(tmp_path, rich_console):
    class _Fails(SleepAudit):
        def run(self, model, probe, *, max_batch_size=None) -> AuditResult:  # noqa: ANN001
            if len(probe) > 2:  # not its dry run
                raise KeyError("boom")
            return super().run(model, probe)

    bar = RichProgressBar(console_kwargs=dict(file=io.StringIO(), force_terminal=True, width=120))
    with pytest.raises(RuntimeError, match="'fails' failed at epoch 0"):
        _fit(tmp_path, bar, [_Fails("fails", 0.0)])
    assert not [t for t in bar.progress.tasks if "causal audit" in t.description]


def test_under_tqdm_the_audits_bar_names_the_audit_running(tmp_path, monkeypatch):
    import tqdm.auto

    bars = []

    class Spy(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)
            self.names: list[str] = []

        def set_postfix_str(self, s="", refresh=True):  # noqa: ANN001
            self.names.append(s)
            super().set_postfix_str(s, refresh=refresh)

    monkeypatch.setattr(tqdm.auto, "tqdm", Spy)
    monkeypatch.setattr(_audit_run, "AUDIT_BAR_DELAY", 0.0)
    _fit(tmp_path, TQDMProgressBar(), [SleepAudit("first", 0.0), SleepAudit("second", 0.0)])
    ours = [b for b in bars if b.desc.startswith("causal audit")]
    assert [(b.desc, b.total, b.names, b.leave) for b in ours] == [("causal audit (epoch 0)", 2, ["first", "second"], False)]


def test_under_tqdm_the_audits_bar_is_drawn_on_stdout_with_lightnings(tmp_path, monkeypatch, capsys):
    """Review of 1c5c8e3 ('its bars write to sys.stdout, as Lightning's'): the audits' bar took tqdm's default, stderr,
    apart from Lightning's bars and the console lines on stdout (a log of stdout had it not; placed by position among
    bars of another stream)."""
    monkeypatch.setattr(_audit_run, "AUDIT_BAR_DELAY", 0.0)
    _fit(tmp_path, TQDMProgressBar(), [SleepAudit("first", 0.0)])
    captured = capsys.readouterr()
    assert "causal audit (epoch 0)" in captured.out and "causal audit" not in captured.err
