"""The ``stacklevel`` that points a warning at the user's line: the first frame outside this package."""

from __future__ import annotations

import os
import sys

__all__ = ["outside_package"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep


def outside_package() -> int:
    """The ``stacklevel`` of the first frame outside ``lightning_causal``, for a ``warnings.warn``
    in the function that calls this one (the package's functions call each other at various
    depths, so no fixed ``stacklevel`` reaches the user's line from all of them).

    Examples:
        >>> import warnings
        >>> def f():
        ...     warnings.warn("shown at the caller's line", UserWarning, stacklevel=outside_package())
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     f()
        >>> w[0].filename.endswith("user_frame.py")
        False
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level
