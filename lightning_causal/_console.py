"""Lines on the console during a fit that leave Lightning's progress bar whole: the callback's notes and cost
line, the repair module's and its terms' set-up notes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_info

__all__ = ["console_info", "console_line", "console_of"]

_TRAINERS: list[Trainer] = []  # the fits whose set-up is running (console_of), innermost last


def console_line(trainer: Trainer, message: str) -> None:
    """Show ``message`` on rank 0's console during a fit without breaking the progress bar: through the trainer's
    progress bar where one is drawn (``tqdm.write`` for Lightning's ``TQDMProgressBar``, which clears its bars, writes
    the line and draws them again below it; the bar's ``print`` for another, e.g. ``RichProgressBar``, whose live
    display then prints it above itself), else as Lightning's own messages (``rank_zero_info``, the
    ``lightning.pytorch`` logger). Logged while a bar was drawn, the line was appended to the bar's last line
    (``... 43.08it/s Causal audit at epoch 0 took ...``), as the logging handler writes to the terminal behind it."""
    if not trainer.is_global_zero:
        return
    bar = trainer.progress_bar_callback
    if bar is None or not getattr(bar, "is_enabled", True):
        rank_zero_info(message)
    elif isinstance(bar, TQDMProgressBar):  # its bars write to sys.stdout; bar.print drops the line when none is open
        from tqdm import tqdm

        tqdm.write(message, file=sys.stdout)
    else:
        bar.print(message)


@contextlib.contextmanager
def console_of(trainer: Trainer) -> Iterator[None]:
    """Within the block, :func:`console_info` writes through ``trainer``'s progress bar (:func:`console_line`): code
    that has no trainer at hand (a repair term's ``setup``) says what it found without breaking the bar."""
    _TRAINERS.append(trainer)
    try:
        yield
    finally:
        _TRAINERS.pop()


def console_info(message: str) -> None:
    """``message`` on the console: through the progress bar of the fit :func:`console_of` names, else as Lightning's
    own messages (``rank_zero_info``: a term set up by hand, outside a fit)."""
    if _TRAINERS:
        console_line(_TRAINERS[-1], message)
    else:
        rank_zero_info(message)
