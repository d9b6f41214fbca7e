"""Warnings of the Lightning-facing layers (``callbacks/``, ``repair/``) at the user's line, in process 0 only."""

from __future__ import annotations

import warnings

from lightning.pytorch.utilities import rank_zero_only

from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["warn_at_users_line"]


def warn_at_users_line(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn ``message`` in process 0 only (as Lightning's ``rank_zero_warn``) at the user's line: the first frame past
    the package and Lightning (a fit's ``trainer.fit`` line, a constructor's call; :func:`outside_package`).
    ``rank_zero_warn``'s default ``stacklevel`` named its caller's line in the package, which a filter by the user's
    module (``warnings.filterwarnings(module=...)``) missed.

    Args:
        message: the warning's text.
        category: the warning's class (``UserWarning``, as ``rank_zero_warn``'s).

    Examples:
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     warn_at_users_line("shown at this line")
        >>> w[0].filename.endswith("_user_warnings.py")
        False
    """
    if rank_zero_only.rank == 0:
        warnings.warn(message, category, stacklevel=outside_package())
