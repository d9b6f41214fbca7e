"""Warnings raised inside audits, shown once per fit."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

from lightning_causal.causal.engine.noise import RANDOM_MODEL, SEPARATE_DRAWS

__all__ = ["WarningsOncePerFit", "noise_notes"]


@contextlib.contextmanager
def noise_notes(notes: list[str]) -> Iterator[None]:
    """Pass on every warning raised inside, and append to ``notes`` what those saying that the model draws random
    numbers in eval mode (:func:`~lightning_causal.causal.engine.noise.warn_noise`,
    :func:`~lightning_causal.causal.engine.noise.warn_separate_noise`) mean for an audit's numbers: the warning is
    shown once per fit, in the console, but every audit's text card and report keep the note.

    Args:
        notes: the list the notes are appended to (each once).

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
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            text = str(w.message)
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


class WarningsOncePerFit:
    """Collects the warnings raised inside :meth:`collect` and shows each ``(category, message)``
    once until :meth:`reset` (a new fit): third-party warnings such as Captum's DeepLift hook
    warning would otherwise repeat at every audit.

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
        """Record the warnings raised inside; on exit show the new ones if ``show`` (rank 0)."""
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
        finally:
            for w in caught:
                key = (w.category, str(w.message))
                if key not in self.seen and show:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                self.seen.add(key)
