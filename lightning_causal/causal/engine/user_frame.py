"""The ``stacklevel`` that points a warning at the user's line: the first frame outside this package (and, under a
training framework's call, outside Lightning's packages too)."""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["outside_package"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep
# a warning at the exit of one of the package's context managers (``@contextlib.contextmanager``) has contextlib's
# ``__exit__`` between the generator and the ``with`` line: no user's line either
_CONTEXTLIB = os.path.abspath(contextlib.__file__)


def outside_package() -> int:
    """The ``stacklevel`` of the first frame outside ``lightning_causal`` (and past Lightning's packages where they
    called it: an audit of a callback inside ``trainer.fit`` warns at the user's ``fit`` line), for a ``warnings.warn``
    in the function that calls this one (the package's functions call each other at various
    depths, so no fixed ``stacklevel`` reaches the user's line from all of them). The frames of ``contextlib`` that run
    a context manager of the package (a warning at its exit) are passed over too: the ``with`` line comes next; so are
    those of TorchDynamo's wrapper of a step the package runs eagerly (``torch.compiler.disable``).

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
    while frame is not None and _ours(os.path.abspath(frame.f_code.co_filename)):
        frame, level = frame.f_back, level + 1
    # called by a training framework (a callback's audit inside trainer.fit): its frames are no user's line either
    # (the warning pointed at lightning/pytorch/trainer/call.py); the first frame past them, where there is one
    frameworks = _framework_dirs()
    past, more = frame, level
    while past is not None and os.path.abspath(past.f_code.co_filename).startswith(frameworks):
        past, more = past.f_back, more + 1
    return more if past is not None and frameworks else level


def _ours(path: str) -> bool:
    """A frame of ``path`` is the package's, or ``contextlib``'s running one of the package's context managers, or
    TorchDynamo's wrapper of a function ``torch.compiler.disable`` marks (the repair module's steps run eagerly so,
    ``repair/objective.eager_step``: a warning of a step called in a plain loop named ``torch/_dynamo/eval_frame.py``)."""
    return path.startswith(_PACKAGE) or path == _CONTEXTLIB or path == _dynamo_wrapper()


def _dynamo_wrapper() -> str | None:
    """The file of TorchDynamo's ``disable`` wrapper, where it is loaded (not imported here: none loaded, none of its
    frames can be on the stack)."""
    module = sys.modules.get("torch._dynamo.eval_frame")
    path = getattr(module, "__file__", None)
    return os.path.abspath(path) if path else None


def _framework_dirs() -> tuple[str, ...]:
    """The directories of the training frameworks loaded (Lightning's packages; none loaded, none of their
    frames can be on the stack: nothing is imported here)."""
    dirs = []
    for name in ("lightning", "lightning_fabric", "pytorch_lightning"):
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(dirs)
