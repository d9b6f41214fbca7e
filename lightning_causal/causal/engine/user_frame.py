"""The ``stacklevel`` that points a warning at the user's line: the first frame outside this package (and, under a
training framework's or torch's call, outside Lightning's packages and torch too)."""

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
    """The ``stacklevel`` of the first frame outside ``lightning_causal`` (and past torch's and Lightning's packages where
    they called it: an audit of a callback inside ``trainer.fit`` warns at the user's ``fit`` line), for a ``warnings.warn``
    in the function that calls this one (the package's functions call each other at various
    depths, so no fixed ``stacklevel`` reaches the user's line from all of them). The frames of ``contextlib`` that run
    a context manager of the package (a warning at its exit) are passed over too: the ``with`` line comes next; so are
    torch's own frames past the package (TorchDynamo's wrapper of a step the package runs eagerly,
    ``torch.compiler.disable``; the optimizer's step and ``torch.no_grad``'s wrapper between Lightning's frames of a
    training step; ``nn.Module.__call__`` of a ``DistributedDataParallel`` model or of the user's ``model(x)``).

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
    # called by a training framework (a callback's audit inside trainer.fit) or by torch (a repair step under
    # torch.compiler.disable, a training step inside the optimizer's closure and torch.no_grad's wrapper, a DDP
    # model's nn.Module.__call__): their frames, and the package's between them, are no user's line either (the
    # warning pointed at lightning/pytorch/trainer/call.py, torch/utils/_contextlib.py, torch/nn/modules/module.py);
    # the first frame past them, where there is one
    frameworks = _framework_dirs()
    past, more = frame, level
    while past is not None and (_ours(path := os.path.abspath(past.f_code.co_filename)) or path.startswith(frameworks)):
        past, more = past.f_back, more + 1
    return more if past is not None else level


def _ours(path: str) -> bool:
    """A frame of ``path`` is the package's, or ``contextlib``'s running one of the package's context managers."""
    return path.startswith(_PACKAGE) or path == _CONTEXTLIB


def _framework_dirs() -> tuple[str, ...]:
    """The directories of torch and of the training frameworks loaded (Lightning's packages; none loaded, none of
    their frames can be on the stack: nothing is imported here)."""
    dirs = []
    for name in ("torch", "lightning", "lightning_fabric", "pytorch_lightning"):
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(dirs)
