"""The checks of :class:`~lightning_causal.callbacks.audit.CausalAuditCallback`'s arguments, run by its
``__init__``: each refusal a ``MisconfigurationException`` naming the argument, the value and what is allowed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, get_args

from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.audits.base import Audit
from lightning_causal.audits.options import check_names
from lightning_causal.callbacks._schedule import check_schedule
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.reporting.figure_kinds import KINDS, FigureKind

__all__ = ["ON_ERROR", "OnError", "check_audit_options", "share_class_names"]

OnError = Literal["raise", "warn"]
ON_ERROR: tuple[OnError, ...] = get_args(OnError)  # the values `on_error` takes


def check_audit_options(
    audits: Sequence[Audit] | Audit, probe_size: int, every_n_epochs: int | Callable[[int], bool], epochs: Iterable[int] | None,
    max_batch_size: int | None, report_dir: str | os.PathLike | None, on_error: OnError, unpack_batch: Any, figure_kind: FigureKind | None,
    *, on_fit_end: Any = True,
) -> tuple[list[Audit], list[int] | None]:
    """The callback's arguments checked; returns the audits as a list (one audit alone, or any other
    sequence, made one) and the epochs sorted without repeats (``None`` stays ``None``; the schedule's checks:
    :func:`~lightning_causal.callbacks._schedule.check_schedule`).

    Raises:
        MisconfigurationException: for any argument outside what it allows.
    """
    if isinstance(audits, Audit):
        audits = [audits]
    # any sequence, as the hint says (a tuple, a UserList); a string is no sequence of audits
    audits = list(audits) if isinstance(audits, Sequence) and not isinstance(audits, (str, bytes)) else audits
    if not isinstance(audits, list) or not audits:
        raise MisconfigurationException(
            f"Expected argument `audits` to be an Audit or a non-empty sequence of Audit objects but got {audits!r}"
        )
    bad = [a for a in audits if not isinstance(a, Audit)]
    if bad:
        raise MisconfigurationException(
            f"Expected argument `audits` to hold Audit objects but got {[type(b).__name__ for b in bad]}"
        )
    unset = [type(a).__name__ for a in audits if not hasattr(a, "name") or not hasattr(a, "output")]
    if unset:  # an audit of one's own whose __init__ skipped Audit.__init__: "'A' object has no attribute 'name'"
        raise MisconfigurationException(
            f"Expected every audit to be initialised by Audit.__init__ but {unset} have no `name`/`output`: call "
            "`super().__init__(name, output=output)` in their __init__")
    names = [a.name for a in audits]
    if len(set(names)) != len(names):
        raise MisconfigurationException(f"Expected audits with distinct names but got {names}; pass `name=` to tell them apart")
    check_int("probe_size", probe_size, minimum=1, error=MisconfigurationException)
    epochs = check_schedule(every_n_epochs, epochs, on_fit_end)
    check_int("max_batch_size", max_batch_size, minimum=1, none_ok=True, error=MisconfigurationException)
    if report_dir is not None and not isinstance(report_dir, (str, os.PathLike)):
        raise MisconfigurationException(f"Expected argument `report_dir` to be None, a str or an os.PathLike but got {report_dir!r}")
    if on_error not in ON_ERROR:
        raise MisconfigurationException(f"Expected argument `on_error` to be one of {ON_ERROR} but got {on_error!r}")
    if unpack_batch is not None and not callable(unpack_batch):
        raise MisconfigurationException(
            f"Expected argument `unpack_batch` to be None or a callable batch -> (inputs, labels, additional_forward_args) "
            f"but got {unpack_batch!r}"
        )
    if figure_kind is not None and figure_kind not in KINDS:
        raise MisconfigurationException(f"Expected argument `figure_kind` to be None or one of {KINDS} but got {figure_kind!r}")
    return audits, epochs


def share_class_names(audits: list[Audit], class_names: Any) -> list[str] | None:
    """``class_names`` checked, and given to every audit of ``audits`` that takes ``class_names`` (an attribute of
    that name) and holds none; returned as plain strings (``None`` stays ``None``).

    Raises:
        MisconfigurationException: ``class_names`` is no sequence of strings.
    """
    try:
        names = check_names("class_names", class_names)
    except TypeError as err:
        raise MisconfigurationException(str(err)) from err
    if names is not None:
        for audit in audits:
            if hasattr(audit, "class_names") and audit.class_names is None:
                audit.class_names = list(names)
    return names
