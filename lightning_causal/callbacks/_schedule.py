"""The epoch schedule of :class:`~lightning_causal.callbacks.audit.CausalAuditCallback`: its arguments checked at
construction (``every_n_epochs``, ``epochs``, ``on_fit_end``; a callable checked to take the epoch, before the first
epoch's training rather than at its end), a callable schedule's answer read as a bool with its epoch named, and the
set-up warning of a fit in which the schedule audits no epoch (``on_fit_end=False``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import BatchSizeFinder, LearningRateFinder
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal._user_warnings import warn_at_users_line

__all__ = ["check_schedule", "scheduled", "warn_nothing_scheduled"]

_EVERY = "an int >= 1 or a callable of the epoch (`epoch -> bool`, called with the 0-based epoch as its one argument)"


def _call_signature(fn: Callable[..., Any], follow_wrapped: bool = True) -> inspect.Signature:
    """``inspect.signature(fn)``, but of an object whose class's ``__call__`` is a ``staticmethod`` or ``classmethod``
    as it is called: inspect reads those as ``()`` (Python 3.11), though ``obj(epoch)`` binds."""
    if not isinstance(fn, type) and isinstance(inspect.getattr_static(type(fn), "__call__", None), (staticmethod, classmethod)):
        return inspect.signature(type(fn).__call__, follow_wrapped=follow_wrapped)
    return inspect.signature(fn, follow_wrapped=follow_wrapped)


def _signature(fn: Callable[..., Any]) -> str:
    """``fn``'s name and signature as the user wrote them (``<lambda>(epoch, total)``), else its repr."""
    try:
        return f"{getattr(fn, '__name__', type(fn).__name__)}{_call_signature(fn)}"
    except (TypeError, ValueError):
        return repr(fn)


def _takes_the_epoch(fn: Callable[..., Any]) -> bool:
    """Whether ``fn(epoch)`` binds: a callable whose signature cannot be read (some built-ins) is taken. The signature
    is read as ``functools.wraps`` shows it (the wrapped function's), else as the wrapper itself takes it, where it takes
    the epoch in a parameter of its own: a decorator's wrapper may take the epoch that the function it wraps does not
    (``@at_epochs(1, 3) def enabled(): ...``, ``def schedule(epoch)``), while one passing its arguments on
    (``def wrapper(*args, **kwargs)``, ``functools.lru_cache``) calls the wrapped function with the epoch. An object
    whose ``__call__`` is a ``staticmethod`` or ``classmethod`` is read as it is called (:func:`_call_signature`)."""
    try:
        _call_signature(fn).bind(0)
    except ValueError:  # no signature to read
        return True
    except TypeError:
        pass
    else:
        return True
    try:
        own = _call_signature(fn, follow_wrapped=False)
        bound = own.bind(0)
    except (TypeError, ValueError):  # the wrapper's own not read (lru_cache's): the wrapped function's is what it takes
        return False
    return all(own.parameters[name].kind is not inspect.Parameter.VAR_POSITIONAL for name in bound.arguments)


def check_schedule(every_n_epochs: Any, epochs: Any, on_fit_end: Any) -> list[int] | None:
    """The schedule's arguments checked; returns ``epochs`` sorted without repeats (``None`` stays ``None``).

    Args:
        every_n_epochs: an int >= 1, or a callable taking the 0-based epoch.
        epochs: ``None`` or an iterable of non-negative ints.
        on_fit_end: a bool.

    Raises:
        MisconfigurationException: naming the argument, the value and what is allowed.

    Examples:
        >>> check_schedule(1, (e for e in [4, 0, 4]), True)
        [0, 4]
        >>> check_schedule(lambda: True, None, True)
        Traceback (most recent call last):
        ...
        lightning.fabric.utilities.exceptions.MisconfigurationException: Expected argument `every_n_epochs` to be an int >= 1 or a callable of the epoch (`epoch -> bool`, called with the 0-based epoch as its one argument) but got <lambda>()
    """
    if callable(every_n_epochs):
        if not _takes_the_epoch(every_n_epochs):
            raise MisconfigurationException(f"Expected argument `every_n_epochs` to be {_EVERY} but got {_signature(every_n_epochs)}")
    elif isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs < 1:
        listed = isinstance(every_n_epochs, (list, tuple, range, set, frozenset))  # the epochs themselves: `epochs=`
        raise MisconfigurationException(f"Expected argument `every_n_epochs` to be {_EVERY} but got {every_n_epochs!r}"
                                        + (f"; to audit those epochs, pass `epochs={every_n_epochs!r}`" if listed else ""))
    if not isinstance(on_fit_end, bool):
        raise MisconfigurationException(f"Expected argument `on_fit_end` to be a bool but got {on_fit_end!r}")
    if epochs is None:
        return None
    try:
        given = list(epochs) if not isinstance(epochs, (str, bytes)) else None
    except TypeError:  # not iterable: `epochs=3` meant `epochs=[3]` or `every_n_epochs=3`
        given = None
    if given is None:
        raise MisconfigurationException(
            f"Expected argument `epochs` to be None or an iterable of non-negative ints (0-based epochs, `epochs=[0, 4, 9]`; "
            f"every n-th epoch: `every_n_epochs=n`) but got {epochs!r}")
    bad = [e for e in given if isinstance(e, bool) or not isinstance(e, int) or e < 0]
    if bad:
        raise MisconfigurationException(
            f"Expected argument `epochs` to hold non-negative ints (0-based epochs) but got {bad} in {given}")
    return sorted(set(given))


def scheduled(every_n_epochs: Callable[[int], Any], epoch: int) -> bool:
    """A callable schedule's answer for ``epoch``, read as a bool (``None``: not scheduled).

    Args:
        every_n_epochs: the callable schedule.
        epoch: the 0-based epoch.

    Raises:
        MisconfigurationException: where no bool can be read from the answer (a tensor of several elements),
            naming the schedule, the epoch and the answer; the reading's error chained.

    Examples:
        >>> scheduled(lambda epoch: epoch % 2, 3)
        True
    """
    value = every_n_epochs(epoch)
    try:
        return bool(value)
    except Exception as err:  # torch's "Boolean value of Tensor with more than one value is ambiguous", NumPy's alike
        raise MisconfigurationException(
            f"Expected the schedule `every_n_epochs={_signature(every_n_epochs)}` to return a bool at epoch {epoch} but it "
            f"returned {value!r:.200}: return one truth value per epoch (`bool(...)`, `.item()`, `.all()`)") from err


def _tuner_search(trainer: Trainer) -> bool:
    """Whether this fit is a ``Tuner``'s search (``Tuner(trainer).lr_find`` / ``scale_batch_size``), which Lightning
    runs as a fit of its own that stops before training: its finder callback is set to exit there (``_early_exit``). A
    ``LearningRateFinder`` / ``BatchSizeFinder`` the user lists searches within the fit that trains: not such a fit."""
    return any(isinstance(cb, (LearningRateFinder, BatchSizeFinder)) and getattr(cb, "_early_exit", False)
               for cb in trainer.callbacks)


def warn_nothing_scheduled(every_n_epochs: Any, epochs: list[int] | None, on_fit_end: bool, trainer: Trainer) -> None:
    """At set-up: warn where the schedule audits no epoch of the fit (``on_fit_end=False``; with ``True`` the last epoch
    is audited at the end of fit). Epochs count from 0: ``max_epochs=10`` trains epochs 0 to 9. A callable schedule
    is the user's code, not called here; a fit without an epoch limit (``max_epochs=-1``) is not judged, nor the search
    fit of a ``Tuner`` (``lr_find``, ``scale_batch_size``), which trains no epoch: the user's ``fit`` after it warns.

    Args:
        every_n_epochs: the callback's ``every_n_epochs``.
        epochs: the callback's ``epochs`` (sorted), or ``None``.
        on_fit_end: the callback's ``on_fit_end``.
        trainer: the Lightning ``Trainer`` being set up for a fit.
    """
    max_epochs = trainer.max_epochs
    if _tuner_search(trainer):  # the fit of `Tuner(trainer).lr_find` / `scale_batch_size`: the fit after it warns
        return
    if on_fit_end or max_epochs is None or max_epochs < 1 or (epochs is None and callable(every_n_epochs)):
        return
    if epochs is not None:
        audits_one = bool(epochs) and epochs[0] < max_epochs
    else:
        audits_one = every_n_epochs <= max_epochs
    if audits_one:
        return
    if epochs is not None:
        schedule, counted = f"epochs={epochs}", "epochs count from 0"
    else:
        n = every_n_epochs
        schedule, counted = f"every_n_epochs={n}", f"epochs count from 0: it audits epochs {n - 1}, {2 * n - 1}, ..."
    trained = f"epochs 0 to {max_epochs - 1}" if max_epochs > 1 else "epoch 0"
    warn_at_users_line(
        f"CausalAuditCallback({schedule}, on_fit_end=False) audits no epoch of this fit: `max_epochs={max_epochs}` trains "
        f"{trained} ({counted}), and `on_fit_end=False` skips the audit of the last one at the end of fit. Schedule an "
        "epoch below max_epochs, or leave `on_fit_end=True`")

