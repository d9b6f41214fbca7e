"""One audit epoch of :class:`~lightning_causal.callbacks.audit.CausalAuditCallback` (:class:`AuditRun`):
every audit run on the probe without a trace on training (seeded, sharded across processes, a failure
settled on every rank), its drift against the last audit and its non-finite values noted, the JSON report
written on rank 0, the scalars logged (``callback_metrics`` and every logger) and the rich content drawn in
TensorBoard."""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.loggers.logger import DummyLogger

from lightning_causal._console import console_line
from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.group_regions import figure_axes
from lightning_causal.audits.logit_reads import judge_outputs
from lightning_causal.callbacks._explain import explained_input, explained_marks
from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.callbacks._one_audit import (
    drift_base,
    failure_hint,
    finish_result,
    non_finite_weights,
    optimizer_eps,
    run_audit,
)
from lightning_causal.callbacks._trainer_facts import (
    audit_precision,
    audited,
    epoch_end_step,
    explained_name,
    row_shard,
    tag_prefix,
)
from lightning_causal.callbacks._warnings import ProcessFailureWarning, WarningsOncePerFit
from lightning_causal.causal.engine.batching import (
    PeerFailure,
    current_shard,
    settle_shards,
    sharded_rows,
)
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.reporting.json_report import report_path, write_report
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, scalar_tags

__all__ = ["AuditRun", "audit_progress", "cost_line", "no_tensorboard_line"]

#: an audit epoch longer than this is reported on the console (:func:`cost_line`)
SLOW_AUDIT_SECONDS = 2.0
#: the audits' own bar (beside Lightning's ``TQDMProgressBar``) shows once an audit epoch has run this long
AUDIT_BAR_DELAY = 2.0


@contextlib.contextmanager
def audit_progress(trainer: Trainer, total: int, epoch: int) -> Iterator[Callable[[int, str], None]]:
    """The progress of an audit epoch of ``total`` audits on rank 0's console, beside Lightning's progress bar: under
    ``TQDMProgressBar`` a tqdm bar of its own (``causal audit (epoch 3): 1/4 [..., layer_map]``, shown once the epoch has
    run ``AUDIT_BAR_DELAY`` seconds, cleared when it ends); under ``RichProgressBar`` a task of its live display
    (``causal audit (epoch 3): layer_map 1/4``: a tqdm bar there left a stale line), removed when the epoch ends; nothing
    without a bar, with a disabled one or another kind. Yields ``step(done, name)``, called before each audit runs:
    ``done`` audits have run, ``name`` runs now."""
    bar = trainer.progress_bar_callback
    description = f"causal audit (epoch {epoch})"
    if not trainer.is_global_zero or bar is None or not bar.is_enabled:
        yield lambda done, name: None
    elif isinstance(bar, TQDMProgressBar):
        from tqdm.auto import tqdm

        # to sys.stdout, as Lightning's bars and the console lines: placed among them (tqdm's own default is stderr)
        tq = tqdm(total=total, desc=description, delay=AUDIT_BAR_DELAY, leave=False, file=sys.stdout)

        def step_tqdm(done: int, name: str) -> None:
            tq.set_postfix_str(name, refresh=False)  # drawn at the update, which waits for the delay
            tq.update(done - tq.n)

        try:
            yield step_tqdm
        finally:
            tq.close()
    elif isinstance(bar, RichProgressBar) and bar.progress is not None:  # started at on_train_start, stopped at teardown:
        # running at every audit epoch, the fit-end one (on_train_end) too
        progress, style = bar.progress, bar.theme.description
        task = progress.add_task(f"[{style}]{description}" if style else description, total=total)

        def step_rich(done: int, name: str) -> None:
            text = f"{description}: {name}"
            progress.update(task, completed=done, description=f"[{style}]{text}" if style else text)
            bar.refresh()

        try:
            yield step_rich
        finally:
            progress.remove_task(task)
            bar.refresh()
    else:
        yield lambda done, name: None


def cost_line(epoch: int, total: float, seconds: dict[str, float], trained: float | None, drawn: float | None = None) -> str:
    """The console line of an audit epoch whose audits took ``total`` seconds: the audits that took longest
    (up to three, where there are several), the seconds spent drawing its TensorBoard content (``drawn``: figures
    rendered and written after the audits, which ``causal/audit_seconds`` leaves out) and, where the audit epoch
    (audits and drawing) took longer than the fit spent since the previous audit (``trained`` seconds: training,
    validation and checkpoints since the last audit or the fit's start), that ratio and the ways to lower it.

    Args:
        epoch: the audited epoch.
        total: the audits' seconds.
        seconds: each audit's seconds, by name.
        trained: the fit's seconds since the previous audit (``None``: unknown).
        drawn: the seconds spent drawing the TensorBoard content (``None``: none drawn, no ``TensorBoardLogger``).

    Examples:
        >>> cost_line(0, 3.0, {"ie": 2.5, "units": 0.5}, 10.0)
        'Causal audit at epoch 0 took 3.0 s (ie 2.5 s, units 0.5 s)'
        >>> cost_line(0, 30.0, {"ie": 30.0}, 6.0).split(";")[0]
        'Causal audit at epoch 0 took 30.0 s, 5.0x the 6.0 s the fit spent since the last audit (training and validation)'
        >>> cost_line(0, 1.0, {"ie": 1.0}, 6.0, drawn=2.0)
        'Causal audit at epoch 0 took 1.0 s, and drawing its TensorBoard content 2.0 s more (3.0 s in all)'
    """
    line = f"Causal audit at epoch {epoch} took {total:.1f} s"
    if len(seconds) > 1:
        slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:3]
        line += f" ({', '.join(f'{name} {s:.1f} s' for name, s in slowest)}{', ...' if len(seconds) > 3 else ''})"
    cost = total
    if drawn is not None:
        cost = total + drawn
        line += f", and drawing its TensorBoard content {drawn:.1f} s more ({cost:.1f} s in all)"
    if trained is not None and 0 < trained < cost:
        spent = f"{trained:.1f}" if trained >= 1 else f"{trained:.2g}"
        line += (f", {cost / trained:.1f}x the {spent} s the fit spent since the last audit (training and validation); "
                 "to audit for less: fewer probe samples (`probe_size=`), coarser input groups (`patch_size=`, "
                 "`feature_mask=`), fewer layers or units, or audits less often (`every_n_epochs=`, `epochs=`)")
        if drawn is not None and drawn > total:
            line += ("; the drawing grows with the audits' figures: draw them less often (`figures_every_n_audits=`), "
                     "fewer audits drawing maps, or audits less often")
    return line


def no_tensorboard_line(loggers: Sequence[Any], report_dir: str | None, *, fast_dev_run: bool = False) -> str:
    """The console line of a fit without a ``TensorBoardLogger``: what is not drawn, and where the values go instead
    (the ``loggers``, else the callback's ``last_scalars``; the reports in ``report_dir``, if any).

    Args:
        loggers: the trainer's loggers.
        report_dir: the callback's report directory (``None``: no reports: under ``fast_dev_run`` without a ``report_dir``,
            else one not writable with ``on_error="warn"``).
        fast_dev_run: whether the fit runs under ``fast_dev_run``, which is why ``report_dir`` is ``None`` there.

    Examples:
        >>> from lightning.pytorch.loggers import CSVLogger
        >>> print(no_tensorboard_line([CSVLogger("logs")], "logs/lightning_logs/version_0/causal_audit"))
        CausalAuditCallback: no TensorBoardLogger, so no histograms, maps or figures are drawn; the scalars go to CSVLogger, and the JSON reports to logs/lightning_logs/version_0/causal_audit
        >>> print(no_tensorboard_line([], None, fast_dev_run=True).split("; ")[1])
        the last audit's values are in the callback's `last_scalars` and `last_results`, and no JSON report is written (no `report_dir`: under `fast_dev_run`, give one)
    """
    writing = [lg for lg in loggers if not isinstance(lg, DummyLogger)]  # fast_dev_run's stand-in writes nothing
    if writing:
        names = ", ".join(type(lg).__name__ for lg in writing)
        what = f"no TensorBoardLogger, so no histograms, maps or figures are drawn; the scalars go to {names}"
    else:
        none = "`fast_dev_run` replaced the loggers with one that writes nothing" if loggers else "no logger at all"
        what = (f"no TensorBoardLogger ({none}), so no histograms, maps or figures are drawn and no scalars logged; "
                "the last audit's values are in the callback's `last_scalars` and `last_results`")
    why = ("no `report_dir`: under `fast_dev_run`, give one" if fast_dev_run
           else "`report_dir` is not writable: skipped, as warned at set-up")
    where = f"the JSON reports to {report_dir}" if report_dir is not None else f"no JSON report is written ({why})"
    return f"CausalAuditCallback: {what}, and {where}"


class AuditRun:
    """The audit epochs of :class:`~lightning_causal.callbacks.audit.CausalAuditCallback`: :meth:`_run` audits
    one epoch. A mixin: the attributes it reads and writes are the callback's (set by its ``__init__`` and
    ``setup``)."""

    audits: list[Audit]
    probe: Probe | None
    probe_origin: str
    max_batch_size: int | None
    report_dir: str | None
    on_error: str
    audited_epochs: list[int]
    failed_epochs: list[int]
    last_results: dict[str, AuditResult]
    last_scalars: dict[str, float]
    _explained: int | None
    _report_tag: str
    _seconds_tag: str
    _previous_vectors: dict[str, dict[str, torch.Tensor]]
    _renderer: TensorBoardRenderer
    _warned_no_tb: bool
    _warnings: WarningsOncePerFit
    figures_every_n_audits: int
    _undrawn: tuple[Any, list[AuditResult], Any, Any, int, str, tuple[Any, Any]] | None  # the last audit's figures, not drawn yet (_draw_last)
    _fit_clock: float | None  # time.perf_counter() at the fit's start or the last audit's end (cost_line)
    _optimizer_eps: float | None  # the audit epoch's optimizer_eps (the fit's optimizers' smallest eps), set in _audit_all

    def _run(self, trainer: Trainer, pl_module: LightningModule, epoch: int, stage: str, *, monitored: bool = True) -> None:
        """Audit ``epoch`` (``stage``: ``"epoch_end"``, or ``"fit_end"``: compared with the last audit but no base
        for later ones); the scalars reach ``callback_metrics`` when ``monitored`` at an epoch's end."""
        t0 = time.perf_counter()
        # the drift bases and audit states the epoch starts from, given back where it leaves none: after the fit-end audit
        # (compared with the last one, no base for later ones: a fit resumed from a checkpoint saved after it goes on as
        # an uninterrupted one), and when the epoch raises before it is recorded (on_error="raise", an interrupt): its
        # audits that ran had replaced theirs, and a checkpoint then written (OnExceptionCheckpoint) held them, so the
        # fit resumed from it, which audits that epoch again, measured its drift against itself
        bases = dict(self._previous_vectors), {a.name: a.state_dict() for a in self.audits}
        try:
            results = self._audit_all(trainer, audited(pl_module), epoch)
            total = time.perf_counter() - t0
            if trainer.world_size > 1:  # one value on every process (rank 0's, the one in its report): monitors agree
                total = float(trainer.strategy.broadcast(total, src=0))
            precision = audit_precision(audited(pl_module), trainer)  # the report's and the card's, read once
            written = self._write_report(trainer, epoch, stage, results, total, precision)
        except BaseException:
            self._give_back(bases)
            raise
        if stage == "fit_end":
            self._give_back(bases)
        if not written:
            self.failed_epochs.append(epoch)
            return
        self.audited_epochs.append(epoch)
        scalars = {t: v for r in results for t, v in scalar_tags(r).items()}
        scalars[self._seconds_tag] = total
        self.last_scalars = scalars
        try:
            drawn = self._log_and_render(trainer, pl_module, epoch, stage, results, scalars, monitored, precision)
        except BaseException:
            # Ctrl+C (or a logger's error, a full disk) while the epoch's content was logged or drawn: the epoch is not
            # recorded, as one whose audit raised, so the checkpoint then written (OnExceptionCheckpoint) holds the
            # state before it and the fit resumed from it audits the epoch again and logs and draws it whole; recorded,
            # it kept the part logged before the interrupt for good
            self.audited_epochs.remove(epoch)
            if stage != "fit_end":  # the fit-end audit's bases were given back above
                self._give_back(bases)
            raise
        trained = None if self._fit_clock is None else t0 - self._fit_clock
        if total + (drawn or 0.0) > SLOW_AUDIT_SECONDS:  # the drawing, not in `total`, can outlast the audits
            seconds = {r.audit: float(r.meta["seconds"]) for r in results if "seconds" in r.meta}
            console_line(trainer, cost_line(epoch, total, seconds, trained, drawn))
        self._fit_clock = time.perf_counter()

    def _log_and_render(self, trainer: Trainer, pl_module: LightningModule, epoch: int, stage: str,
                        results: list[AuditResult], scalars: dict[str, float], monitored: bool,
                        precision: dict[str, Any] | None = None) -> float | None:
        """Log the recorded epoch's ``scalars`` (``callback_metrics`` where ``monitored`` at an epoch's end, every
        logger) and draw its TensorBoard content; return the drawing's seconds (:meth:`_render`). An error of a logger
        or of the drawing (a full disk) raises a ``RuntimeError`` naming what was logged, the error chained
        (``on_error="raise"``), or warns and returns ``None`` (``"warn"``: the epoch stays audited, its numbers in its
        report and ``last_results``); a Ctrl+C goes up as it is."""
        # monitorable (callback_metrics); `log` is not allowed in on_train_end, and under `barebones=True` it only warns
        if stage == "epoch_end" and monitored and not trainer.barebones:
            pl_module.log_dict(scalars, on_step=False, on_epoch=True, sync_dist=False, logger=False)
        error, doing, drawn = None, "", None
        try:
            for logger in trainer.loggers:  # at the step of the rich content, one step per audit
                doing = f"logging its scalars to {type(logger).__name__}"
                # with the epoch, as Lightning's own rows (a CSV row without it is lost to a group-by-epoch);
                # TensorBoard already has an `epoch` point at this step (the card names the epoch too)
                epoch_column = {} if isinstance(logger, TensorBoardLogger) else {"epoch": epoch}
                logger.log_metrics({**scalars, **epoch_column}, step=epoch_end_step(trainer))
                logger.save()  # as Lightning after each of its own: a CSVLogger's row is on disk when the audit ends
            doing = "drawing its TensorBoard content (histograms, figures, text card)"
            drawn = self._render(trainer, epoch, results, stage, precision)
        except Exception as err:  # a full disk under a logger or the drawing, a logger's own error
            error = err
        # the loggers and the drawing write on rank 0 only: every process learns its failure and goes on (or stops) alike
        failure = trainer.strategy.broadcast(None if error is None else f"{doing} raised {error!r}", src=0)
        if failure is None:
            return drawn
        report = f" (its JSON report is written: {self.report_dir})" if self.report_dir is not None else ""
        message = f"Causal audit of epoch {epoch} ran{report} but could not be logged: {failure}"
        if self.on_error == "raise":
            raise RuntimeError(f"{message}; pass `on_error='warn'` to go on without it") from error
        warn_at_users_line(f"{message}; training continues, the epoch recorded as audited (its values in the "
                           "callback's `last_results`), its logged content incomplete")
        return None

    def _give_back(self, bases: tuple[dict[str, dict[str, torch.Tensor]], dict[str, dict[str, Any]]]) -> None:
        """Restore the drift bases and audit states :meth:`_run` took at an epoch's start."""
        self._previous_vectors = bases[0]
        for audit in self.audits:
            audit.load_state_dict(bases[1][audit.name])

    def _write_report(self, trainer: Trainer, epoch: int, stage: str, results: list[AuditResult], total: float,
                      precision: dict[str, Any] | None = None) -> bool:
        """Write the JSON report on global rank 0 (atomically); every rank learns whether it was
        written. A failed write raises (``on_error="raise"``, naming ``report_dir``) or warns. ``precision``: its
        ``"precision"`` entry, the card's too (``None``: read here, :func:`audit_precision`)."""
        error = None
        if trainer.is_global_zero and self.report_dir is not None:
            try:
                probe = {"source": self.probe_origin, "samples": len(self.probe) if self.probe is not None else 0}
                write_report(self.report_dir, epoch, stage, results, tag=self._report_tag,
                             extra={"audit_seconds": total, "world_size": trainer.world_size, "probe": probe,
                                    "model": explained_name(trainer.lightning_module),
                                    "precision": precision or audit_precision(audited(trainer.lightning_module), trainer)})
            except (OSError, TypeError, ValueError) as err:  # a full disk; a custom audit's value JSON cannot hold
                error = repr(err)
        error = trainer.strategy.broadcast(error, src=0)
        if error is None:
            return True
        message = f"Causal audit report of epoch {epoch} could not be written to `report_dir` {self.report_dir!r}: {error}"
        if self.on_error == "raise":
            raise RuntimeError(message)
        warn_at_users_line(f"{message}; training continues and the epoch is recorded as failed")
        return False

    def _audit_all(self, trainer: Trainer, model: torch.nn.Module, epoch: int) -> list[AuditResult]:
        results = []
        with (no_trace(model), sharded_rows(row_shard(trainer)), self._warnings.collect(show=trainer.is_global_zero),
              figure_axes(self._renderer.figure_kind),
              audit_progress(trainer, len(self.audits), epoch) as step):
            # energies or 0/1 sets read as logits: the set-up pass saw the untrained model, whose energies decided nothing;
            # the judge of a direct audit.run, so that either path gives the same warnings
            judge_outputs(self.audits, model, self.probe, self.max_batch_size)  # type: ignore[arg-type]
            # float16 weights that diverged: Adam's default eps blamed only where it may be the fit's (_run_one)
            self._optimizer_eps = optimizer_eps(trainer)
            for done, audit in enumerate(self.audits):
                step(done, audit.name)
                result = self._run_one(audit, model, epoch)
                if result is not None:
                    results.append(result)
        return results

    def _run_one(self, audit: Audit, model: torch.nn.Module, epoch: int) -> AuditResult | None:
        t0 = time.perf_counter()
        eps = getattr(self, "_optimizer_eps", None)  # the fit's optimizers' smallest eps (_audit_all), None: unknown
        result, error, notes = None, None, []
        try:
            result = run_audit(audit, model, self.probe, self._explained, self.max_batch_size, notes)  # type: ignore[arg-type]
        except Exception as err:
            error = err
        # under DDP, an audit that failed in one process fails in every one (with on_error="warn" the
        # others would otherwise go on to the next audit's collectives while it still waits in this one's)
        error = settle_shards(error)
        if error is not None:
            hint = failure_hint(error, self.max_batch_size, len(self.probe) if self.probe is not None else 0)  # out of memory
            weights = non_finite_weights(model, eps=eps)  # an audit that refuses the NaN outputs of diverged weights: say so
            hint += f"; {weights}" if weights else ""
            if self.on_error == "raise":
                raise RuntimeError(f"Causal audit {audit.name!r} failed at epoch {epoch}: {error}{hint}") from error
            warn_at_users_line(f"Causal audit {audit.name!r} failed at epoch {epoch}: {error!r}{hint}; training continues")
            shard = current_shard()
            if shard is not None and shard.rank != 0 and not isinstance(error, PeerFailure):  # rank 0 only names this process
                warnings.warn(f"Causal audit {audit.name!r} failed at epoch {epoch} in process {shard.rank}: {error!r}{hint}",
                              ProcessFailureWarning, stacklevel=outside_package())  # shown there, not by process 0
            failed = AuditResult(audit.name, scalars={"failed": 1.0}, meta={"error": repr(error) + hint, "epoch": epoch})
            # the error's traceback holds this frame, which holds the error: a cycle that would keep the failed pass's
            # tensors (the device memory an out-of-memory pass took) from the training that goes on, until the cyclic
            # garbage collector ran
            del error
            return failed
        assert result is not None
        finish_result(audit, result, notes, epoch=epoch, seconds=time.perf_counter() - t0,
                      previous=self._previous_vectors.get(audit.name, {}),
                      warn=lambda what: warn_at_users_line(f"Causal audit {audit.name!r} at epoch {epoch} {what}"), model=model,
                      eps=eps)
        self._previous_vectors[audit.name] = drift_base(result)
        self.last_results[audit.name] = result
        return result

    def _render(self, trainer: Trainer, epoch: int, results: list[AuditResult], stage: str = "epoch_end",
                precision: dict[str, Any] | None = None) -> float | None:
        """Draw the epoch's content in TensorBoard; return the seconds it took (``None``: nothing drawn, no
        ``TensorBoardLogger`` or not rank 0). ``precision``: the card's line, the report's entry (``None``: read here)."""
        if not trainer.is_global_zero:  # other ranks' writers are no-ops: build no figures there
            return None
        tb = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None:
            if not self._warned_no_tb:
                console_line(trainer, no_tensorboard_line(trainer.loggers, self.report_dir, fast_dev_run=bool(trainer.fast_dev_run)))
                self._warned_no_tb = True
            return None
        t0 = time.perf_counter()
        probe, report = self.probe, report_path(self.report_dir, epoch, stage, tag=self._report_tag) if self.report_dir is not None else None
        shown = explained_input(probe, self._explained) if probe else None  # the input the maps explain
        # its padded or unobserved entries and its steps' time stamps (the probe's forward arguments)
        marks = explained_marks(audited(trainer.lightning_module), probe, self._explained) if probe else (None, None)
        # the figures at the first audit, every n-th after it and the fit-end one (audited_epochs holds this one); the
        # last audit of a fit, if not drawn here, is drawn when training ends (_draw_last)
        figures = stage == "fit_end" or (len(self.audited_epochs) - 1) % self.figures_every_n_audits == 0
        step, labels = epoch_end_step(trainer), probe.labels if probe else None
        self._renderer.render(tb.experiment, epoch, results, shown, step=step, probe_labels=labels, report=report,
                              figures=figures, scalar_prefix=tag_prefix(tb), stage=stage,
                              model=explained_name(trainer.lightning_module),  # as the report's "model"
                              probe_unobserved=marks[0], probe_times=marks[1],
                              precision=precision or audit_precision(audited(trainer.lightning_module), trainer))
        self._undrawn = None if figures else (tb.experiment, results, shown, labels, step, tag_prefix(tb), marks)
        return time.perf_counter() - t0

    def _draw_last(self) -> None:
        """Draw the figures of the fit's last audit where ``figures_every_n_audits`` left them out (training ended
        at an audit off its count: ``max_epochs``, early stopping, ``max_steps``), at that audit's step."""
        if self._undrawn is not None:
            writer, results, shown, labels, step, prefix, (unobserved, times) = self._undrawn
            self._undrawn = None
            self._renderer.render_figures(writer, results, shown, step=step, probe_labels=labels, scalar_prefix=prefix,
                                          probe_unobserved=unobserved, probe_times=times)

