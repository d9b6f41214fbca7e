"""Early stopping and checkpointing on a causal scalar, whatever the audit schedule.

Lightning's ``EarlyStopping`` and ``ModelCheckpoint`` read ``trainer.callback_metrics`` at every
epoch end (after that epoch's audit; but when validation ends, before it, where validation does not
run once an epoch at its end: ``val_check_interval``, ``check_val_every_n_epoch``). With audits every ``n > 1`` epochs, a ``causal/...`` scalar is missing before the first audit
(``EarlyStopping`` raises, ``ModelCheckpoint`` too once validation has run) and afterwards the last
audit's value stays in ``callback_metrics``, so patience counts epochs that repeat one audit. The
two subclasses here look at a causal scalar only at the epochs where the
:class:`~lightning_causal.callbacks.audit.CausalAuditCallback` whose audits log it (``causal/<audit>/``)
computed it, whatever other audit callbacks on other schedules do: each audit's value is seen once,
at its epoch, and ``patience`` counts audits.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterable
from typing import Any, Literal

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, ModelPruning
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor
from typing_extensions import override

from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.audits.causal_graph import PREVIOUS_RUN_SCALARS, CausalGraphAudit
from lightning_causal.callbacks.audit import CausalAuditCallback, audit_seconds_tag
from lightning_causal.causal.engine.checks import check_int

__all__ = [
    "AuditEarlyStopping",
    "AuditModelCheckpoint",
    "advise_lightning_monitors",
    "audit_owners",
    "audit_scalars_now",
    "check_monitors_after_dry_run",
    "warn_lightning_non_finite_stops",
]

MonitorMode = Literal["min", "max"]  # the `mode` of Lightning's EarlyStopping and ModelCheckpoint
_SCHEDULE_OPTIONS = ("every_n_train_steps", "train_time_interval", "every_n_epochs", "save_on_train_epoch_end")


_SHARED_TAGS = ("compare/",)  # logged under their own name (CaptumBaseline), outside `causal/<audit>/`
#: CaptumBaseline's reference metrics' former section (``captum/<M>/...``), now ``compare/<M>/...``: named in the error.
_FORMER_CAPTUM = "captum/"
_EVERY_CALLBACK = "causal/audit_seconds"  # the first audit callback's time; a later one's: audit_seconds_tag


def audit_owners(monitor: str, callbacks: Iterable[Any]) -> list[CausalAuditCallback]:
    """The :class:`CausalAuditCallback` objects among ``callbacks`` whose audits log ``monitor``:
    those holding an audit named ``name`` for ``causal/<name>/...``; every one of them for the
    ``compare/...`` tags (named by the method); the one whose :func:`audit_seconds_tag`
    it is for an audit time (``causal/audit_seconds``: the first; ``callbacks`` are a Trainer's, in order).

    Args:
        monitor: the monitored tag.
        callbacks: the Trainer's callbacks, in order (only the :class:`CausalAuditCallback` among them
            count).

    Examples:
        >>> from lightning_causal.audits import InputEffectAudit, UnitImportanceAudit
        >>> dense = CausalAuditCallback([InputEffectAudit()])
        >>> sparse = CausalAuditCallback([UnitImportanceAudit(["net.0"])], every_n_epochs=4)
        >>> audit_owners("causal/unit_importance/net.0/top1_importance", [dense, sparse]) == [sparse]
        True
        >>> audit_owners("val_loss", [dense, sparse])
        []
        >>> audit_owners("causal/audit_seconds_unit_importance", [dense, sparse]) == [sparse]
        True
    """
    audit_callbacks = [cb for cb in callbacks if isinstance(cb, CausalAuditCallback)]
    if monitor.startswith(_SHARED_TAGS):
        return audit_callbacks
    if monitor.startswith(_EVERY_CALLBACK):
        timed = [cb for cb in audit_callbacks if audit_seconds_tag(cb, audit_callbacks) == monitor]
        if timed:
            return timed
    return [cb for cb in audit_callbacks if any(monitor.startswith(f"causal/{a.name}/") for a in cb.audits)]


def _audited_now(cb: CausalAuditCallback, epoch: int) -> bool:
    return bool(cb.audited_epochs) and cb.audited_epochs[-1] == epoch


def audit_scalars_now(trainer: Trainer, callbacks: Iterable[CausalAuditCallback] | None = None) -> dict[str, float] | None:
    """The scalars that the trainer's audit callbacks (or only ``callbacks``) logged at the current
    epoch, ``None`` when none of them audited at this epoch.

    Args:
        trainer: the Lightning ``Trainer`` (its ``callbacks`` and ``current_epoch`` are read).
        callbacks: the audit callbacks to read; ``None``: every one of the trainer's.

    Examples:
        >>> import types
        >>> cb = CausalAuditCallback.__new__(CausalAuditCallback)
        >>> cb.audited_epochs, cb.last_scalars = [2, 5], {"causal/ie/mean_abs_effect": 0.1}
        >>> audit_scalars_now(types.SimpleNamespace(callbacks=[cb], current_epoch=5))
        {'causal/ie/mean_abs_effect': 0.1}
        >>> audit_scalars_now(types.SimpleNamespace(callbacks=[cb], current_epoch=6)) is None
        True
    """
    scalars: dict[str, float] | None = None
    for cb in trainer.callbacks if callbacks is None else callbacks:
        if isinstance(cb, CausalAuditCallback) and _audited_now(cb, trainer.current_epoch):
            scalars = {**(scalars or {}), **cb.last_scalars}
    return scalars


def _check_owned(owner: str, monitor: str, trainer: Trainer) -> None:
    """At set-up: a ``CausalAuditCallback`` is among the Trainer's callbacks and one of its audits logs ``monitor``."""
    audit_callbacks = [cb for cb in trainer.callbacks if isinstance(cb, CausalAuditCallback)]
    if not audit_callbacks:
        raise MisconfigurationException(
            f"{owner} monitors a scalar of CausalAuditCallback but the Trainer's callbacks hold none; add one"
        )
    if not audit_owners(monitor, audit_callbacks):
        names = [a.name for cb in audit_callbacks for a in cb.audits]
        times = ", ".join(f"`{audit_seconds_tag(cb, audit_callbacks)}`" for cb in audit_callbacks)
        renamed = f"; {_renamed(monitor)}" if monitor.startswith(_FORMER_CAPTUM) else ""
        raise MisconfigurationException(
            f"Expected argument `monitor` of {owner} to be a scalar of an audit, `causal/<audit>/<metric>` with <audit> one "
            f"of the Trainer's audits {names} (or an audit time, {times}; `compare/...`), but got {monitor!r}{renamed}")


def _renamed(monitor: str) -> str:
    """What a ``monitor`` in CaptumBaseline's former section of reference metrics (``captum/<M>/...``) is now."""
    return (f"CaptumBaseline logs its methods' reference metrics (sensitivity_max, infidelity) as "
            f"`compare/<method>/<metric>`, after the `causal/` scalars in TensorBoard, formerly `captum/<method>/<metric>`: "
            f"monitor {'compare/' + monitor[len(_FORMER_CAPTUM):]!r}")


def _due(owner: str, monitor: str, trainer: Trainer, strict: bool) -> bool:
    """Whether ``monitor`` was computed at this epoch by an audit of the callbacks that log it
    (other callbacks' audits do not count). Such an audit epoch without it raises (``strict``)
    naming the scalars those audits did log, unless an audit failed (``on_error="warn"``), or the
    tag is shared by several callbacks and another one logs it (or has not audited yet)."""
    owners = audit_owners(monitor, trainer.callbacks)
    scalars = audit_scalars_now(trainer, owners)
    if scalars is None:
        return False
    if monitor in scalars:
        return True
    if any(monitor in cb.last_scalars or not cb.last_scalars for cb in owners if not _audited_now(cb, trainer.current_epoch)):
        return False
    drift = _drift_not_logged(monitor, scalars, [cb for cb in owners if _audited_now(cb, trainer.current_epoch)])
    if drift == "first":
        return False
    if drift == "none":
        what = "drift scalars" if "/drift/" in monitor else "comparison with a previous graph"
        warn_at_users_line(f"{owner}(monitor={monitor!r}): the audit of epoch {trainer.current_epoch} logged no {what} "
                           "(no earlier run of it to compare with, e.g. that run failed); this audit is skipped")
        return False
    if drift == "units":
        warn_at_users_line(f"{owner}(monitor={monitor!r}): the audit of epoch {trainer.current_epoch} compared no graph with the "
                           "previous audit's: the layers' units or the output's width changed between them (the model changed, "
                           "e.g. a head grown to more classes); this audit is skipped, the next compares again")
        return False
    if drift in ("resized", "entries"):
        what = ("vector's length changed since the previous audit (the model changed between them, e.g. a head grown to more "
                "classes), so its entries are not the same units" if drift == "resized" else "vector's entries are other "
                "ones than at the previous audit, in the same number (meta['changed_entries']: a layer map's layers, one "
                "left out and another back)")
        warn_at_users_line(f"{owner}(monitor={monitor!r}): the audit of epoch {trainer.current_epoch} computed no such drift: the "
                           f"{what}; this audit is skipped, the next compares again")
        return False
    if drift == "constant":
        kind, how = ("Spearman", "constant") if monitor.endswith("/spearman") else ("top-k", "constant in magnitude")
        warn_at_users_line(f"{owner}(monitor={monitor!r}): the audit of epoch {trainer.current_epoch} left out this {kind} "
                           f"drift (the vector or the previous audit's was {how}: no ranking to compare); this audit is skipped")
        return False
    failed = sorted(t for t in scalars if t.endswith("/failed"))
    message = (f"{owner}(monitor={monitor!r}) found no such scalar after the audit of epoch {trainer.current_epoch}; "
               f"the audits logged: {sorted(scalars)[:40]}{_now_named(monitor, scalars)}")
    if strict and not failed:
        raise MisconfigurationException(message)
    warn_at_users_line(f"{message}; this audit is skipped" + (f" (failed audits: {failed})" if failed else ""))
    return False


def _now_named(monitor: str, scalars: Iterable[str]) -> str:
    """What a tag ``monitor`` the audits did not log is now called, where it was renamed (empty otherwise)."""
    scalars = set(scalars)
    return _share_renamed(monitor, scalars) or _axis_renamed(monitor, scalars)


#: the axis names a Sobol' tag's group changed, each with the ways back to a logged tag and why (renames applied together)
_AXIS_RENAMES = (
    ([[("_depth_", "_frames_")]], "a video clip's groups name `frames` under figure_kind='frames' (before, a volume's `depth`)"),
    ([[("_frames_", "_depth_")]], "groups name `frames` only under figure_kind='frames', of a video clip (a 5-D input is "
                                  "otherwise read as a volume, `depth`)"),
    ([[("_steps_", "_points_"), ("_channels_", "_coordinates_"), ("_features_", "_coordinates_")]],
     "a point cloud's groups name `points` (and `coordinates`) under figure_kind='points' (before, a signal's `steps` "
     "and `channels`/`features`)"),
    ([[("_points_", "_steps_"), ("_coordinates_", "_channels_")], [("_points_", "_steps_"), ("_coordinates_", "_features_")]],
     "groups name `points` only under figure_kind='points', of a point cloud (a 3-D input is otherwise read as a "
     "signal, `steps`)"),
)


def _axis_renamed(monitor: str, scalars: set[str]) -> str:
    """Where ``monitor`` is a Sobol' tag of a group read the other way, ``S/11_depth_0-3_..`` of a video clip under
    ``figure_kind="frames"`` (``depth`` before the clips named their ``frames``) or ``S/11_frames_0-3_..`` without it,
    ``S/7_steps_7-7`` of a point cloud under ``figure_kind="points"`` (``points`` since) or ``S/7_points_7-7`` without
    it: the tag logged now. (A cloud that was read as an image, ``rows``/``cols``, has boxes of other bounds: not
    found.)"""
    head, _, last = monitor.rpartition("/")
    for ways, why in _AXIS_RENAMES:
        for renames in ways:
            now = last
            for old, new in renames:
                now = now.replace(old, new, 1)
            if now != last and f"{head}/{now}" in scalars:
                return f"; {why}: monitor {head + '/' + now!r}"
    return ""


def _share_renamed(monitor: str, scalars: Iterable[str]) -> str:
    """Where ``monitor`` is a ``top{k}_share`` its audit (and layer) logs with another ``k``: what it is now. The tag
    carries the audit's ``top_k``; it carried the number of units or groups summed (at most all but one), so a tag of a
    layer narrower than ``top_k + 1`` units, or of inputs of at most ``top_k`` groups, is another one now."""
    head, found, _ = monitor.rpartition("/top")
    if not found or not re.fullmatch(r"\d+_share", monitor[len(head) + 4:]):
        return ""
    now = sorted(t for t in scalars if t.startswith(head + "/top") and re.fullmatch(r"\d+_share", t[len(head) + 4:]))
    return (f"; `top{{k}}_share` carries the audit's `top_k` whatever the width (before, the number of units or groups "
            f"summed, at most all but one): monitor {now[0]!r}" if now else "")


def _drift_not_logged(monitor: str, scalars: dict[str, float], audited: list[CausalAuditCallback]) -> str | None:
    """Why a drift scalar ``causal/<audit>/drift/<vector>/<metric>`` is absent from an audit, where
    the callback leaves it out by design: ``"first"`` at the callback's first audit (nothing to
    compare with yet), ``"none"`` when the audit logged no drift at all (its earlier runs failed),
    ``"constant"`` for a ``spearman`` or ``topk_jaccard`` whose vector's ``shift`` was logged (a
    constant vector has no ranking), ``"resized"`` for a vector whose length changed since the previous
    audit (a head grown between them: ``meta["resized_vectors"]``), ``"entries"`` for one whose named entries are
    other ones in the same number (``meta["changed_entries"]``); of ``CausalGraphAudit``'s comparison with its
    previous graph (``edges_gained``, ``edges_lost``, ``edge_jaccard_previous``): ``"first"`` as above, ``"units"`` at a
    run whose units changed (``meta["units_changed"]``), ``"none"`` at a later run without a previous graph (the runs
    before failed); ``None`` otherwise (a wrong tag: also one of those three names under an audit that is no
    ``CausalGraphAudit``)."""
    if _graph_comparison(monitor, [a for cb in audited for a in cb.audits]):
        audit = monitor[len("causal/"):].rsplit("/", 1)[0]
        if any(getattr(cb.last_results.get(audit), "meta", {}).get("units_changed") for cb in audited):
            return "units"
        return "first" if any(len(cb.audited_epochs) == 1 for cb in audited) else "none"
    if "/drift/" not in monitor or not monitor.startswith("causal/"):
        return None
    audit, _, rest = monitor[len("causal/"):].partition("/drift/")
    vector, metas = rest.rpartition("/")[0], [getattr(cb.last_results.get(audit), "meta", {}) for cb in audited]
    for reason, key in (("resized", "resized_vectors"), ("entries", "changed_entries")):
        if any(vector in meta.get(key, {}) for meta in metas):
            return reason
    if not any(tag.startswith(monitor.split("/drift/")[0] + "/drift/") for tag in scalars):
        return "first" if any(len(cb.audited_epochs) == 1 for cb in audited) else "none"
    for metric in ("spearman", "topk_jaccard"):
        if monitor.endswith("/" + metric) and monitor[: -len(metric)] + "shift" in scalars:
            return "constant"
    return None


def _graph_comparison(monitor: str, audits: Iterable[Any]) -> bool:
    """Whether ``monitor`` is one of ``CausalGraphAudit``'s comparisons with its previous graph,
    ``causal/<audit>/<edges_gained|edges_lost|edge_jaccard_previous>`` with ``<audit>`` a ``CausalGraphAudit`` among
    ``audits`` (the same name under another audit is a wrong tag, refused as one)."""
    return any(isinstance(a, CausalGraphAudit) and monitor in (f"causal/{a.name}/{s}" for s in PREVIOUS_RUN_SCALARS)
               for a in audits)


def _check_scheduled(owner: str, monitor: str, trainer: Trainer) -> None:
    """At set-up: warn when the callbacks whose audits log ``monitor`` audit no epoch before
    ``max_epochs`` (the audit at the end of fit is not monitored): nothing would be checked."""
    max_epochs = trainer.max_epochs
    if trainer.fast_dev_run or max_epochs is None or max_epochs < 1 or max_epochs > 100_000:
        return
    owners = audit_owners(monitor, trainer.callbacks)
    if any(callable(cb.every_n_epochs) and cb.epochs is None for cb in owners):
        return  # a callable schedule is the user's code: not called here
    if any(min(cb.epochs, default=max_epochs) < max_epochs if cb.epochs is not None else cb.every_n_epochs <= max_epochs
           for cb in owners):  # the schedule alone: a callback used for an earlier fit still holds its audited epochs
        return
    schedules = [f"epochs={cb.epochs}" if cb.epochs is not None else f"every_n_epochs={cb.every_n_epochs}" for cb in owners]
    warn_at_users_line(
        f"{owner}(monitor={monitor!r}) will check nothing: the CausalAuditCallback whose audits log it ({', '.join(schedules)}) "
        f"audits no epoch before max_epochs={max_epochs}, and the audit at the end of fit is not monitored; "
        "audit more often or train longer")


def advise_lightning_monitors(audit_callback: CausalAuditCallback, trainer: Trainer) -> None:
    """At the set-up of ``audit_callback``: warn when Lightning's own ``EarlyStopping`` or
    ``ModelCheckpoint`` (without a schedule of its own) monitors one of its scalars where it cannot
    see each audit once, right after it, naming the class to use instead. On a sparse schedule it
    reads the scalar at every epoch end (missing before the first audit, then the last audit's value
    again); where it reads it when validation ends (``val_check_interval`` < 1 or steps,
    ``check_val_every_n_epoch`` > 1, ``check_on_train_epoch_end=False``, ``save_on_train_epoch_end=False``),
    that is before the audit at the end of the epoch: it sees the previous audit's value (a checkpoint
    scored by another epoch's audit) or none. Lightning's error at the first check only asks whether
    the scalar was logged. One monitoring a ``captum/<method>/...`` tag beside a ``CaptumBaseline`` is
    warned about too: those are ``compare/<method>/...`` now.

    Args:
        audit_callback: the audit callback being set up.
        trainer: the Lightning ``Trainer`` whose ``EarlyStopping``/``ModelCheckpoint`` callbacks are
            checked.
    """
    sparse = not (audit_callback.epochs is None and audit_callback.every_n_epochs == 1)
    schedule = (f"epochs={audit_callback.epochs}" if audit_callback.epochs is not None
                else f"every_n_epochs={getattr(audit_callback.every_n_epochs, '__name__', audit_callback.every_n_epochs)}")
    captum = sys.modules.get("lightning_causal.audits.captum_baseline")  # not imported: no CaptumBaseline among the audits
    compares = captum is not None and any(isinstance(a, captum.CaptumBaseline) for a in audit_callback.audits)
    for cb in trainer.callbacks:
        if isinstance(cb, _OnAudits) or not isinstance(cb, (EarlyStopping, ModelCheckpoint)) or not cb.monitor:
            continue
        if compares and cb.monitor.startswith(_FORMER_CAPTUM):
            warn_at_users_line(f"{type(cb).__name__}(monitor={cb.monitor!r}) monitors a tag no audit logs: {_renamed(cb.monitor)}")
            continue
        if isinstance(cb, ModelCheckpoint) and (getattr(cb, "_every_n_train_steps", 0) or getattr(cb, "_train_time_interval", None)
                                                or getattr(cb, "_every_n_epochs", 1) != 1):
            continue  # a schedule of its own, chosen by the user
        if not any(cb.monitor.startswith(f"causal/{a.name}/") for a in audit_callback.audits):  # its own tags, not shared ones
            continue
        name, ours = type(cb).__name__, "EarlyStopping" if isinstance(cb, EarlyStopping) else "ModelCheckpoint"
        at_validation = _reads_at_validation_end(cb, trainer)
        if at_validation:
            warn_at_users_line(
                f"{name}(monitor={cb.monitor!r}) reads the scalar when validation ends ({at_validation}), but CausalAuditCallback "
                "audits at the end of the training epoch, after that epoch's validation: it sees the previous audit's value (a "
                f"checkpoint scored by another epoch's audit, silently) or none before the first audit. Use "
                f"lightning_causal.Audit{ours} (the same arguments), which checks it once per audit, right after it")
        elif sparse:
            warn_at_users_line(
                f"{name}(monitor={cb.monitor!r}) reads the scalar at every epoch end, but CausalAuditCallback logs it only at "
                f"its audited epochs ({schedule}): it is missing before the first audit, then the last audit's value is "
                f"seen again. Use lightning_causal.Audit{ours} (the same arguments), which checks it once per audit")


def warn_lightning_non_finite_stops(audit_callback: CausalAuditCallback, trainer: Trainer) -> None:
    """After ``audit_callback``'s audit at an epoch's end: warn, once a fit each, for Lightning's own ``EarlyStopping``
    (not :class:`AuditEarlyStopping`) that will stop training at this audit's NaN or infinite value of its ``monitor``
    (``check_finite=True``, Lightning's default and its first criterion), which Lightning says only under
    ``verbose=True``: one that reads the scalar at the epoch's end (``check_on_train_epoch_end``), which Lightning calls
    after every callback that is no ``EarlyStopping`` or checkpoint, so right after the audit wherever it is listed, as
    :class:`AuditEarlyStopping` warns of its own such stop.

    Args:
        audit_callback: the audit callback whose audit of this epoch just logged its scalars.
        trainer: the Lightning ``Trainer`` whose ``EarlyStopping`` callbacks are checked.
    """
    if trainer.fast_dev_run or audit_callback.audited_epochs[-1:] != [trainer.current_epoch]:
        return  # no audit logged at this epoch's end
    for cb in trainer.callbacks:  # Lightning calls EarlyStopping's on_train_epoch_end after every other callback's
        if (isinstance(cb, _OnAudits) or not isinstance(cb, EarlyStopping) or cb.verbose or not cb.check_finite
                or id(cb) in audit_callback._stops_said or cb.monitor not in audit_callback.last_scalars
                or _reads_at_validation_end(cb, trainer)):
            continue
        value = trainer.callback_metrics.get(cb.monitor)
        if value is not None and value.numel() == 1 and not math.isfinite(float(value)):
            audit_callback._stops_said.add(id(cb))
            _warn_non_finite_stop(f"{type(cb).__name__}(monitor={cb.monitor!r})", float(value), trainer, decided=False)


def _warn_non_finite_stop(who: str, value: float, trainer: Trainer, *, decided: bool) -> None:
    """Warn that the early stopping ``who`` (``"AuditEarlyStopping(monitor='...')"``) stops training at this epoch's
    audit, whose value ``value`` is NaN or infinite (``check_finite=True``), the way on named; ``decided``: it has
    asked already (past tense), else it will, right after. Where ``Trainer(min_epochs=...)`` or ``min_steps`` is not
    met yet, Lightning trains on until it is and stops then (``should_stop`` stays set): the words say so."""
    epoch, minimum = trainer.current_epoch, _unmet_minimum(trainer)
    if minimum:
        stop = f"{'asked' if decided else 'asks'} training to stop after the audit of epoch {epoch}"
        later = f"; {minimum} is not met yet: Lightning trains on until it is, and stops then"
    else:
        stop, later = f"{'stopped' if decided else 'stops'} training after the audit of epoch {epoch}", ""
    quiet = "" if decided else ", and says so only under `verbose=True`"
    warn_at_users_line(
        f"{who} {stop}: the audit's value is {value} (`check_finite=True`, Lightning's default, stops at a NaN or infinite "
        f"value{quiet}){later}; the audit's warning of NaN or infinite values says where it comes from. Pass "
        "`check_finite=False` to count such an audit as no improvement and train on")


def _unmet_minimum(trainer: Trainer) -> str:
    """The ``Trainer``'s ``min_epochs``/``min_steps`` not met yet at this epoch's end, which keep a fit going although
    ``trainer.should_stop`` is set (``"Trainer(min_epochs=3)"``); ``""`` where the fit may stop (Lightning's
    ``fit_loop._can_stop_early``, which counts this epoch as processed already)."""
    loop = trainer.fit_loop
    if getattr(loop, "_can_stop_early", True):
        return ""
    unmet = [f"min_epochs={loop.min_epochs}"] if loop.min_epochs and loop.epoch_progress.current.processed < loop.min_epochs else []
    unmet += [f"min_steps={loop.min_steps}"] if loop.min_steps and trainer.global_step < loop.min_steps else []
    return f"Trainer({', '.join(unmet) or 'min_epochs, min_steps'})"


def _reads_at_validation_end(cb: EarlyStopping | ModelCheckpoint, trainer: Trainer) -> str:
    """Why Lightning's ``cb`` reads its monitor when validation ends rather than at the end of the
    training epoch (``""`` where it reads it at the epoch end): its own option set to ``False``, or
    left to Lightning's default, which reads at the epoch end only when validation runs once an epoch, at its end."""
    option = "check_on_train_epoch_end" if isinstance(cb, EarlyStopping) else "save_on_train_epoch_end"
    flag = getattr(cb, f"_{option}", None)
    if flag is not None:
        return "" if flag else f"{option}=False"
    if isinstance(cb, ModelCheckpoint) and not trainer.enable_validation:
        return ""  # ModelCheckpoint's default: at the epoch end in a fit without validation
    interval = getattr(trainer, "val_check_interval", 1.0)  # set when the fit starts where it is a time (Lightning >= 2.6)
    reasons = [f"val_check_interval={interval}"] if interval != 1.0 else []
    if getattr(trainer, "_val_check_time_interval", None) is not None:
        reasons = ["a time-based val_check_interval"]
    reasons += [f"check_val_every_n_epoch={trainer.check_val_every_n_epoch}"] if trainer.check_val_every_n_epoch != 1 else []
    return ", ".join(reasons)


def check_monitors_after_dry_run(audit_callback: CausalAuditCallback, trainer: Trainer) -> None:
    """Before the first training step, after ``audit_callback``'s dry run (2 probe samples): warn
    for each ``AuditEarlyStopping``/``AuditModelCheckpoint`` on one of its audits' tags that the dry
    run did not log, listing those it did, instead of only at the first audit (possibly many epochs
    later). Drift scalars are left out (they come from the second audit on); a tag that depends on the
    samples (a group's rate) may still come with the whole probe, hence a warning, not an error.

    Args:
        audit_callback: the audit callback whose dry run ran.
        trainer: the Lightning ``Trainer`` whose ``AuditEarlyStopping``/``AuditModelCheckpoint``
            callbacks are checked.
    """
    if not audit_callback.dry_run_tags:
        return
    for cb in trainer.callbacks:
        if (not isinstance(cb, _OnAudits) or "/drift/" in cb.monitor or cb.monitor in audit_callback.dry_run_tags
                or _graph_comparison(cb.monitor, audit_callback.audits)):  # none before a second run, as drift
            continue
        if any(cb.monitor.startswith(f"causal/{a.name}/") for a in audit_callback.audits):
            warn_at_users_line(
                f"{type(cb).__name__}(monitor={cb.monitor!r}) is not among the scalars of the audits' dry run before training; "
                f"unless the whole probe gives it, the first audit will raise. The dry run logged: "
                f"{sorted(audit_callback.dry_run_tags)[:40]}{_now_named(cb.monitor, audit_callback.dry_run_tags)}")


def _check_monitor(owner: str, monitor: object) -> None:
    if not isinstance(monitor, str) or not monitor:
        raise MisconfigurationException(
            f"Expected argument `monitor` of {owner} to be a scalar tag of the audits, `causal/<audit>/<metric>`, but got {monitor!r}")


class _OnAudits:
    """What both monitoring callbacks add to Lightning's class (listed first among the bases):
    at ``setup`` a ``CausalAuditCallback`` among the Trainer's callbacks must hold an audit that logs
    ``monitor``, and ``on_train_epoch_end`` runs only at epochs where that callback audited
    (``monitor`` missing there: an error when ``strict``, a warning otherwise)."""

    monitor: str

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)  # type: ignore[misc]
        if stage == "fit":
            _check_owned(type(self).__name__, self.monitor, trainer)
            _check_scheduled(type(self).__name__, self.monitor, trainer)
            if trainer.barebones:  # Lightning's check would fail at the first audit, naming no cause
                raise MisconfigurationException(
                    f"{type(self).__name__} reads `{self.monitor}` from `trainer.callback_metrics`, which `Trainer(barebones=True)` "
                    "leaves empty (it disables logging); drop `barebones=True`, or read the audits' values from the "
                    "CausalAuditCallback's `last_scalars` and its JSON reports")

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if _due(type(self).__name__, self.monitor, trainer, getattr(self, "strict", True)):
            super().on_train_epoch_end(trainer, pl_module)  # type: ignore[misc]


class AuditEarlyStopping(_OnAudits, EarlyStopping):
    r"""Lightning's ``EarlyStopping`` on a scalar of
    :class:`~lightning_causal.callbacks.audit.CausalAuditCallback`, checked once per audit.

    The check runs at the end of the training epochs audited by the callback whose audit logs
    ``monitor`` (after the audit) and only there: ``patience`` counts audits, not epochs, and ``min_delta``, ``mode``,
    ``stopping_threshold``, ``divergence_threshold`` and ``check_finite`` keep their meaning.

    Args:
        monitor: a scalar tag logged by the audits, e.g. ``"causal/fairness/cf_gap"``.
        min_delta: smallest change counted as an improvement.
        patience: audits without improvement before training stops.
        mode: ``"min"`` or ``"max"``.
        strict: raise when an audit epoch lacks ``monitor`` (unless an audit failed under
            ``on_error="warn"``); otherwise warn and skip that audit.
        kwargs: further ``EarlyStopping`` options (``verbose``, ``check_finite``,
            ``stopping_threshold``, ``divergence_threshold``, ...).

    A drift scalar (``causal/<audit>/drift/...``) exists from its audit's second run on: it is
    checked from then on; a ``spearman`` or ``topk_jaccard`` drift left out because a vector was
    constant skips that audit with a warning, as does one left out because the vector's entries changed
    since the previous audit (``meta["resized_vectors"]``, ``meta["changed_entries"]``: a head grown to more
    classes). A ``CausalGraphAudit``'s comparison with its previous graph (``edges_gained``, ``edges_lost``,
    ``edge_jaccard_previous``) is checked alike: from its second run on, skipped with a warning at a run whose
    units changed (``meta["units_changed"]``). When the audits that log ``monitor`` are scheduled at no epoch before
    ``max_epochs``, ``setup`` warns (the audit at the end of fit is not monitored). An audit whose value is NaN or
    infinite (``UnitImportanceAudit``'s ``top1_importance`` where a unit's ablation makes the output NaN, a share over
    NaN effects) stops training under ``check_finite=True`` (Lightning's default), which Lightning says only under
    ``verbose=True``: this callback warns (under ``Trainer(min_epochs=...)``, that Lightning trains on until the minimum
    is met); ``check_finite=False`` counts it as no improvement. Lightning's own ``EarlyStopping`` stops there too,
    silently: the ``CausalAuditCallback`` warns of it where it reads the scalar right after the audit.

    Raises:
        MisconfigurationException: ``monitor`` not a non-empty string; ``check_on_train_epoch_end=False``
            (audits run at the end of the training epoch); at ``setup``, no ``CausalAuditCallback`` among
            the Trainer's callbacks or none with an audit that logs ``monitor``, or ``Trainer(barebones=True)``
            (no ``callback_metrics``); at an audit epoch, ``monitor`` missing (``strict``).

    Examples:
        >>> stop = AuditEarlyStopping("causal/input_effect/top5_share", mode="max", patience=2)
        >>> stop.patience, stop.monitor
        (2, 'causal/input_effect/top5_share')
    """

    def __init__(self, monitor: str, min_delta: float = 0.0, patience: int = 3, *, mode: MonitorMode = "min", strict: bool = True,
                 **kwargs: Any) -> None:
        if kwargs.pop("check_on_train_epoch_end", None) not in (None, True):  # None: Lightning's default
            raise MisconfigurationException(
                "Expected argument `check_on_train_epoch_end` to be True for AuditEarlyStopping (audits run at the end of "
                "the training epoch)")
        _check_monitor("AuditEarlyStopping", monitor)
        check_int("patience", patience, minimum=0, error=MisconfigurationException)  # Lightning takes -1 (and 2.5) as given
        super().__init__(monitor, min_delta, patience, mode=mode, strict=strict, check_on_train_epoch_end=True, **kwargs)

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._non_finite: float | None = None  # the non-finite value this callback's own check stopped at, this epoch
        self._non_finite_said = False  # once a fit: under min_epochs, Lightning trains on and the check stops again

    @override
    def _evaluate_stopping_criteria(self, current: Tensor) -> tuple[bool, str | None]:
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if should_stop and self.check_finite and not math.isfinite(float(current)):  # Lightning's first criterion
            self._non_finite = float(current)
        return should_stop, reason

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._non_finite = None
        super().on_train_epoch_end(trainer, pl_module)
        if self._non_finite is not None and not getattr(self, "_non_finite_said", False):
            # Lightning says why only under verbose=True: a fit that ended at its first audit, with no word of the stop;
            # this callback's own decision, whatever another callback (Lightning's EarlyStopping listed before) decided
            self._non_finite_said = True
            _warn_non_finite_stop(f"AuditEarlyStopping(monitor={self.monitor!r})", self._non_finite, trainer, decided=True)


def _check_pruning_order(monitor: str, trainer: Trainer) -> None:
    """At set-up: warn when a ``ModelPruning`` that prunes at the end of the training epoch comes
    after the audit callback that logs ``monitor``: it prunes after the audit, so the checkpoint
    (saved after every other callback) would hold weights the audit did not see."""
    owners = audit_owners(monitor, trainer.callbacks)
    if not owners:
        return
    first = min(trainer.callbacks.index(cb) for cb in owners)
    late = [cb for cb in trainer.callbacks[first + 1:] if isinstance(cb, ModelPruning)
            and getattr(cb, "_prune_on_train_epoch_end", True)]
    if late:
        warn_at_users_line(
            f"AuditModelCheckpoint(monitor={monitor!r}): ModelPruning comes after the CausalAuditCallback among the Trainer's "
            "callbacks, so it prunes after the audit of each epoch and the checkpoints hold pruned weights the audit did not "
            "see (the score would not be theirs); list ModelPruning before the CausalAuditCallback")


def _warn_averaged_checkpoints(monitor: str, trainer: Trainer) -> None:
    """Lightning's ``WeightAveraging`` (``EMAWeightAveraging``: Lightning >= 2.6) writes its average into every
    checkpoint's ``state_dict`` and the trained weights under ``current_model_state``, while the audits explain the
    trained weights: the best checkpoint's ``state_dict`` is not what gave its score. Warned at set-up, naming the key
    that holds the audited weights."""
    from lightning.pytorch import callbacks as lightning_callbacks

    kind = getattr(lightning_callbacks, "WeightAveraging", None)
    averaging = next((type(cb).__name__ for cb in trainer.callbacks if kind is not None and isinstance(cb, kind)), None)
    if averaging is None:
        return
    warn_at_users_line(
        f"AuditModelCheckpoint(monitor={monitor!r}) chooses checkpoints by audits of the trained weights, but {averaging} "
        "writes its averaged weights into every checkpoint's `state_dict` (what `load_from_checkpoint` loads) and the "
        "trained ones under `current_model_state`: a best checkpoint loaded and audited gives other numbers than its "
        "score. Load `torch.load(path, weights_only=True)['current_model_state']` for the audited weights, or keep the "
        "average in your module and audit it through `audited_module` (docs/your_model.md, 'EMA weights')")


class AuditModelCheckpoint(_OnAudits, ModelCheckpoint):
    r"""Lightning's ``ModelCheckpoint`` on a scalar of
    :class:`~lightning_causal.callbacks.audit.CausalAuditCallback`: the top-k checkpoints are
    chosen among the epochs audited by the callback whose audit logs ``monitor``, each saved at the end of its epoch right after the audit
    (so the saved weights are the audited ones, unless the LightningModule changes them in its own
    ``on_train_epoch_end``, which Lightning calls between the audit and the checkpoint, or Lightning's ``WeightAveraging``
    / ``EMAWeightAveraging`` writes its average into the checkpoint's ``state_dict``, the audited weights under
    ``current_model_state``: ``setup`` warns).

    The audit schedule decides when checkpoints are considered: ``every_n_epochs``,
    ``every_n_train_steps``, ``train_time_interval`` and ``save_on_train_epoch_end`` are not
    accepted. ``save_last`` saves the last checkpoint at every audited epoch, improved or not (Lightning 2.6's
    ``ModelCheckpoint`` saves it only beside a top-k checkpoint), and not at the end of training (``save_last="link"``: a
    link to the epoch's top-k checkpoint, a file where the epoch has none); add a plain
    ``ModelCheckpoint(save_last=True)`` for one every epoch. With Lightning's ``ModelPruning``, list
    it before the ``CausalAuditCallback``: pruning after the audit would save weights the audit did
    not see (``setup`` warns).

    Args:
        monitor: a scalar tag logged by the audits, e.g. ``"causal/captum_baseline/deletion_auc"``.
        dirpath: directory of the checkpoints (default: the logger's ``checkpoints/``).
        filename: file name template (default ``"{epoch}-{step}"``). A causal tag holds ``/``, which
            Lightning's inserted ``name=`` turns into folders (``epoch=3-causal/units/...=0.51.ckpt``):
            name it yourself with ``auto_insert_metric_name=False``, e.g.
            ``filename="{epoch}-share={causal/units/net.2/top3_share:.4f}"`` gives ``3-share=0.5123.ckpt``.
        save_top_k: how many of the best audited epochs to keep (``-1``: all).
        mode: ``"min"`` or ``"max"``.
        kwargs: further ``ModelCheckpoint`` options (``save_last``, ``save_weights_only``, ``verbose``, ...).

    Raises:
        MisconfigurationException: ``monitor`` not a non-empty string; a schedule option; at ``setup``, no ``CausalAuditCallback``
            among the Trainer's callbacks or none with an audit that logs ``monitor``; at an audit
            epoch, ``monitor`` missing.

    Examples:
        >>> ckpt = AuditModelCheckpoint("causal/captum_baseline/deletion_auc", mode="min", save_top_k=2)
        >>> ckpt.monitor, ckpt.save_top_k
        ('causal/captum_baseline/deletion_auc', 2)
    """

    def __init__(self, monitor: str, dirpath: Any = None, filename: str | None = None, *, save_top_k: int = 1,
                 mode: MonitorMode = "min", **kwargs: Any) -> None:
        given = sorted(k for k in _SCHEDULE_OPTIONS if kwargs.get(k) is not None)
        if given:
            raise MisconfigurationException(
                f"Expected no schedule options for AuditModelCheckpoint (the audit schedule decides) but got {given}")
        kwargs = {k: v for k, v in kwargs.items() if k not in _SCHEDULE_OPTIONS}  # None, ModelCheckpoint's defaults
        _check_monitor("AuditModelCheckpoint", monitor)
        super().__init__(dirpath, filename, monitor, save_top_k=save_top_k, mode=mode, every_n_epochs=1,
                         save_on_train_epoch_end=True, **kwargs)

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            _check_pruning_order(self.monitor, trainer)
            _warn_averaged_checkpoints(self.monitor, trainer)

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # at an epoch whose audit computed `monitor`: the top-k checkpoints, then `last` whether or not a top-k one
        # was saved (Lightning 2.6 saves `last` only beside a top-k checkpoint, so after the best audit `last.ckpt`
        # stayed the best epoch's and a resume from it went back there)
        if not _due(type(self).__name__, self.monitor, trainer, getattr(self, "strict", True)):
            return
        if self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        if self.save_last == "link" and self._last_global_step_saved != trainer.global_step:
            # no top-k checkpoint of this epoch to link to (Lightning links `last` to the latest one saved, an earlier
            # epoch's): `last` a file of this epoch, the link removed first (a checkpoint IO that opens the path, not
            # Lightning's atomic save, would write through it into the linked checkpoint)
            self._last_checkpoint_saved = ""
            if trainer.is_global_zero and self.last_model_path and os.path.islink(self.last_model_path):
                os.remove(self.last_model_path)
        self._save_last_checkpoint(trainer, candidates)

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # nothing: Lightning 2.6 saves `last` at the end of training where none was saved, weights no audit saw;
        # this callback's checkpoints are audited epochs only
        return
