"""Warnings raised inside audits, shown once per fit."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from collections.abc import Iterator

from lightning_causal.causal.engine.batching import fit_kind
from lightning_causal.causal.engine.noise import RANDOM_MODEL, SEPARATE_DRAWS

__all__ = ["WarningsOncePerFit", "noise_notes", "show_again"]


def show_again(w: warnings.WarningMessage) -> bool:
    """Warn ``w`` (a warning recorded inside an audit) again, under the filters in force outside the recording, with
    the module name ``warnings.warn`` gave it: that of the module of ``w.filename`` (the user's line, where the package
    warns at it). Without it, ``warnings.warn_explicit`` takes the file's path without ``.py`` for the module, so a
    filter by the user's module (``warnings.filterwarnings("ignore", module="my_pkg.train")``) never matched.

    Args:
        w: the recorded warning.

    Returns:
        Whether the user's console holds ``w``: ``False`` where a filter of action ``"ignore"`` hid it, ``True`` where
        it was shown now or, under an action that shows it once, before.

    Examples:
        >>> said = warnings.WarningMessage(UserWarning("kept"), UserWarning, os.__file__, 1)  # as if warned at os.py
        >>> with warnings.catch_warnings(record=True) as shown:
        ...     warnings.simplefilter("always")
        ...     warnings.filterwarnings("ignore", module="os")
        ...     show_again(said)
        False
        >>> shown
        []
    """
    module = _module_of(w.filename)
    action, where = _action(w, module)
    if action == "ignore":
        return False
    if _shown_before(w, action, where):
        return True
    if module is None:  # a string run by exec, a doctest: the file's name (an explicit module=None shows nothing)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    else:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, module=module)
    return True


def _action(w: warnings.WarningMessage, module: str | None) -> tuple[str, str]:
    """The action of the first filter in force that matches ``w``, as ``warnings.warn_explicit`` finds it
    (``warnings.defaultaction`` where none does), and the module name it matched against."""
    message = w.message
    text, category = (str(message), type(message)) if isinstance(message, Warning) else (str(message), w.category)
    where = module if module is not None else (w.filename[:-3] if w.filename.lower().endswith(".py") else w.filename)
    for act, msg, cat, mod, line in warnings.filters:
        if ((msg is None or msg.match(text)) and issubclass(category, cat) and (mod is None or mod.match(where))
                and (line == 0 or w.lineno == line)):
            return act, where
    return warnings.defaultaction, where


#: what :func:`show_again` showed under an action that shows a warning once ("default", "module", "once"): the filter
#: list in force then (the object and its contents) and the keys shown under it
_SHOWN: dict[str, object] = {"filters": None, "contents": None, "keys": set()}


def _shown_before(w: warnings.WarningMessage, action: str, where: str) -> bool:
    """Whether ``w`` was shown again already under the filters in force, by an action that shows it once: Python's
    ``"default"`` (once per message, category and line of a module, as a warning at the user's line is), ``"module"``
    (once per message of a module) or ``"once"`` (once per message). ``warnings.warn_explicit`` keeps no such memory
    here: the registry it would keep it in is cleared whenever the filters change, and each audit's recording
    (``catch_warnings``) changes them, so a warning an audit raised was shown at every ``audit_model`` call of a
    notebook's loop, every fit. Kept while the filter list is the same (the list object and its contents, as a
    ``catch_warnings`` or a filter of the user's makes a new one or changes it), so a new filter shows it again, as
    Python's registry does; the other actions ("always", "error", "ignore") are ``warn_explicit``'s."""
    filters = warnings.filters
    if _SHOWN["filters"] is not filters or _SHOWN["contents"] != filters:
        _SHOWN.update(filters=filters, contents=list(filters), keys=set())
    message = w.message
    text, category = (str(message), type(message)) if isinstance(message, Warning) else (str(message), w.category)
    key = {"default": (where, text, category, w.lineno), "module": (where, text, category), "once": (text, category)}.get(action)
    keys: set = _SHOWN["keys"]  # type: ignore[assignment]
    if key is None:
        return False
    if key in keys:
        return True
    keys.add(key)
    return False


_BY_FILE: dict[str, str] = {}  # a loaded module's file (absolute) -> its name, first name kept
_INDEXED: list[frozenset] = [frozenset()]  # the names sys.modules held when _BY_FILE was built


def _module_of(filename: str) -> str | None:
    """The name of the loaded module whose file is ``filename`` (``None``: none, as for a string run by ``exec``).
    Looked up in an index of ``sys.modules`` by file, built again on a miss only when the loaded modules' names changed
    since (a comparison of names, no file read): a scan of
    every module at each call (3 ms with the 3,800 modules of a test session) made a batch of recorded warnings shown
    again cost seconds, which stalled a process of a sharded audit past its peers' collective timeout."""
    path = os.path.abspath(filename)
    if path not in _BY_FILE and sys.modules.keys() != _INDEXED[0]:
        _BY_FILE.clear()
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if isinstance(file, str):
                _BY_FILE.setdefault(os.path.abspath(file), name)
        _INDEXED[0] = frozenset(sys.modules)
    return _BY_FILE.get(path)


@contextlib.contextmanager
def noise_notes(notes: list[str], said: list[str] | None = None) -> Iterator[None]:
    """Pass on every warning raised inside, and append to ``notes`` what those saying that the model draws random
    numbers in eval mode (:func:`~lightning_causal.causal.engine.noise.warn_noise`,
    :func:`~lightning_causal.causal.engine.noise.warn_separate_noise`) mean for an audit's numbers: the warning is
    shown once per fit, in the console, but every audit's text card and report keep the note.

    Args:
        notes: the list the notes are appended to (each once).
        said: a list given the text of every warning passed on and shown (not one a filter of action ``"ignore"`` hid:
            :func:`show_again`; ``None``: none kept), so that a later warning need not repeat an audit's note that its
            own warning already said.

    Examples:
        >>> notes = []
        >>> with warnings.catch_warnings(record=True):
        ...     with noise_notes(notes):
        ...         warnings.warn(f"{RANDOM_MODEL} (...). causal_graph {SEPARATE_DRAWS}: ...")
        >>> notes
        ['the model draws random numbers in eval mode; causal_graph compares passes of separate noise draws: its figures hold differences of draws']
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        separate, common = [], False
        for w in caught:
            text = str(w.message)
            if show_again(w) and said is not None:  # not one a filter of the user's hid: no "above" to point to
                said.append(text)
            if not text.startswith(RANDOM_MODEL):
                continue
            found = re.search(rf"\)\. (.+?) {SEPARATE_DRAWS}", text)
            if found is None:
                common = True
            elif found.group(1) not in separate:
                separate.append(found.group(1))
        new = []
        if common:
            new.append("the model draws random numbers in eval mode; effects are at fixed noise, for one draw of it (common "
                       "random numbers from seed 0 at every audit)")
        if separate:
            new.append(f"the model draws random numbers in eval mode; {', '.join(separate)} compares passes of separate noise "
                       "draws: its figures hold differences of draws")
        notes.extend(n for n in new if n not in notes)


class ProcessFailureWarning(UserWarning):
    """An audit's failure in a process other than 0 under a distributed strategy, with its own error (process 0 says
    only that another process failed, ``PeerFailure``): :meth:`WarningsOncePerFit.collect` shows it in that process,
    where it shows no other warning (those are process 0's to show)."""


class WarningsOncePerFit:
    """Collects the warnings raised inside :meth:`collect` and shows each ``(category, message)``
    once until :meth:`reset` (a new fit): third-party warnings such as Captum's DeepLift hook
    warning would otherwise repeat at every audit. A warning of the package whose text holds figures that change
    between audit epochs carries a kind (:func:`~lightning_causal.causal.engine.batching.kinded`): the first of that
    kind is shown, once per fit.

    Examples:
        >>> once = WarningsOncePerFit()
        >>> with warnings.catch_warnings(record=True) as shown:
        ...     warnings.simplefilter("always")
        ...     for _ in range(3):
        ...         with once.collect():
        ...             warnings.warn("hooks on ReLU")
        >>> len(shown)
        1
    """

    def __init__(self) -> None:
        self.seen: set[tuple[type[Warning], str]] = set()

    def reset(self) -> None:
        self.seen = set()

    @contextlib.contextmanager
    def collect(self, show: bool = True) -> Iterator[None]:
        """Record the warnings raised inside; on exit show the new ones if ``show`` (rank 0), and a
        :class:`ProcessFailureWarning` (this process's own failure) whatever ``show``."""
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
        finally:
            for w in caught:
                key = (w.category, fit_kind(w.message))  # a figured warning's kind (kinded): once, not per epoch
                if key not in self.seen and (show or issubclass(w.category, ProcessFailureWarning)):
                    show_again(w)
                self.seen.add(key)
