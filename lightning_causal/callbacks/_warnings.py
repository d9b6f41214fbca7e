"""Warnings raised inside audits, shown once per fit."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

__all__ = ["WarningsOncePerFit"]


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
