"""Names that moved between the supported dependency versions (the floors in pyproject.toml).

Imports only torch, so that the pure-PyTorch core (``lightning_causal.causal``) may use it. Use these names instead
of the newer spellings; ``tests/test_compat.py`` checks that the library does not name the newer ones elsewhere.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

_TORCH = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])

#: ``torch.OutOfMemoryError`` (torch >= 2.5, the device-generic class) where it exists, else
#: ``torch.cuda.OutOfMemoryError`` (torch 2.3 - 2.4): on torch >= 2.5 the two are one class.
OutOfMemoryError: type[RuntimeError] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


#: whether exceptions take notes (``BaseException.add_note``, Python 3.11+; pyproject allows 3.10)
NOTES = hasattr(BaseException, "add_note")


def with_note(err: BaseException, note: str) -> BaseException:
    """``err`` itself with ``note``, shown where Python shows the error: on Python 3.11+ the note added
    (``err.add_note(note)``). On 3.10, where exceptions take no notes, the notes are kept on ``err`` and shown by
    the error's own text: where that is its one message argument, the argument becomes a ``str`` of the same
    value that prints the notes after it (a ``KeyError``'s quoted key, ``'input_ids'``, then the notes unescaped; the
    key itself, ``err.args[0] == "input_ids"``, unchanged); where the error's class prints something else (its own
    ``__str__``, ``_ShapeError(shape)``), the error is given a subclass of its class of the same name that prints the
    notes after its text (``isinstance`` as before; pickled as the class itself). An error of a built-in class given
    no argument (``AssertionError()``, which the subclass cannot be given) gets one, an empty message printing the
    notes (``err.args == ("",)``, was ``()``). An error of a built-in class that prints several arguments (an
    ``OSError(errno, strerror, filename)``, a ``UnicodeDecodeError``) shows none there, nor does one whose text or
    class refuses (a ``__str__`` that raises, an ``__init_subclass__`` refusing the subclass): ``with_note`` never
    raises in place of the error it notes. The same object is returned, its type's name and attributes kept (its
    arguments too but for an empty message given): re-raise ``err``. Every note the package adds to an error goes
    through here.

    Examples:
        >>> err = ValueError("bad input")
        >>> noted = with_note(err, "Raised while reading the probe")
        >>> noted is err, "Raised while reading the probe" in (str(err) + " ".join(getattr(err, "__notes__", [])))
        (True, True)
    """
    if NOTES:
        err.add_note(note)
        return err
    notes = getattr(err, _NOTES, None)
    if not isinstance(notes, list):
        notes = []
        setattr(err, _NOTES, notes)
    notes.append(note)
    args = err.args
    try:
        _show_notes(err, note, notes)
    except Exception:  # noqa: BLE001 - a text or class that refuses (a __str__ that raises, an __init_subclass__
        err.args = args  # refusing the subclass): the notes kept, not shown; the error itself, never one of ours
    return err


def _show_notes(err: BaseException, note: str, notes: list[str]) -> None:
    """Make ``err``'s own text print ``notes`` (:func:`with_note` on Python 3.10), ``note`` the one added last."""
    if note in str(err):  # a message or class already noted: it reads the list
        return
    args = err.args
    if len(args) == 1 and isinstance(args[0], str):
        err.args = (_NotedText(args[0], notes),)
        if note in str(err):
            return
        err.args = args  # its class prints something else
    try:
        err.__class__ = _noted_class(type(err))
    except TypeError:  # a built-in class, which keeps its own: the notes kept, shown only where it has no argument
        if not args:  # AssertionError(): an empty message printing them
            err.args = (_NotedText("", notes),)
            if note not in str(err):
                err.args = args


class _NotedText(str):
    """A message of the value ``text`` that prints ``notes`` after it, as text and as ``repr`` (a ``KeyError``)."""

    notes: list[str]

    def __new__(cls, text: str, notes: list[str] | tuple[()] = ()) -> "_NotedText":
        made = super().__new__(cls, str.__str__(text))
        made.notes = list(notes) if not isinstance(notes, list) else notes
        return made

    def __str__(self) -> str:  # an empty message (AssertionError()): the notes alone
        return "\n".join([str.__str__(self), *self.notes] if str.__len__(self) else self.notes)

    def __repr__(self) -> str:
        return "\n".join([str.__repr__(self), *self.notes])


def _noted_class(cls: type) -> type:
    """A subclass of ``cls`` of its name that prints an error's ``__notes__`` after ``cls``'s text (Python 3.10)."""
    if getattr(cls, "_noted_from", None) is not None:
        return cls
    made = _NOTED_CLASSES.get(cls)
    if made is not None:
        return made

    def __str__(self: BaseException) -> str:  # an empty text (no argument): the notes alone
        return "\n".join([text for text in [cls.__str__(self)] if text] + getattr(self, _NOTES, []))

    def __reduce__(self: BaseException) -> Any:
        reduced = cls.__reduce__(self)
        return (cls, *reduced[1:]) if isinstance(reduced, tuple) and reduced and reduced[0] is made else reduced

    # no slot of its own (``__slots__ = ()``): the layout of ``cls``, also where ``cls`` declares ``__slots__ = ()``
    made = type(cls.__name__, (cls,), {"__str__": __str__, "__reduce__": __reduce__, "_noted_from": cls, "__slots__": (),
                                       "__module__": cls.__module__, "__qualname__": cls.__qualname__})
    _NOTED_CLASSES[cls] = made
    return made


_NOTED_CLASSES: dict[type, type] = {}
_NOTES = "_lightning_causal_notes"  # an error's notes on Python 3.10 (not ``__notes__``, which 3.11's traceback prints)


def is_autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for the device type ``device_type`` (``"cpu"``, ``"cuda"``, ...):
    ``torch.is_autocast_enabled(device_type)`` from torch 2.4; before, where that takes no argument and
    answers for CUDA only, the per-device function (``torch.is_autocast_cpu_enabled``, ...).

    Examples:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     is_autocast_enabled("cpu"), is_autocast_enabled("cuda")
        (True, False)
        >>> is_autocast_enabled("cpu")
        False
    """
    if _TORCH >= (2, 4):
        return torch.is_autocast_enabled(device_type)
    return _is_autocast_enabled_before_2_4(device_type)


def autocast_dtype(device_type: str) -> torch.dtype:
    """The dtype autocast computes in on the device type ``device_type``: ``torch.get_autocast_dtype(device_type)`` from
    torch 2.4; before, the per-device function, as torch 2.3's ``torch.autocast`` reads it
    (:func:`_autocast_dtype_before_2_4`).

    Raises:
        RuntimeError: before torch 2.4, for a device type autocast does not know there (``"mps"``: from torch 2.5).

    Examples:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     autocast_dtype("cpu")
        torch.bfloat16
    """
    if _TORCH >= (2, 4):
        return torch.get_autocast_dtype(device_type)
    return _autocast_dtype_before_2_4(device_type)


def _before_2_4(device_type: str, what: str) -> object:
    """Torch 2.3's per-device autocast function ``what`` (``"is_autocast_{}_enabled"``, ``"get_autocast_{}_dtype"``)
    for ``device_type``, where ``torch.autocast`` of torch 2.3 finds it: CUDA's in ``torch`` without a device
    (``torch.is_autocast_enabled``, ``torch.get_autocast_gpu_dtype``), the CPU's, IPU's and XLA's in ``torch``
    (``torch.get_autocast_cpu_dtype``), XPU's and HPU's in their device module (``torch.xpu.get_autocast_xpu_dtype``), a
    privateuse1 backend's module's own (``is_autocast_enabled``, ``get_autocast_dtype``); ``None`` for a device type
    without autocast (``"mps"``)."""
    if device_type == "cuda":
        return getattr(torch, "is_autocast_enabled" if "enabled" in what else "get_autocast_gpu_dtype")
    found = getattr(torch, what.format(device_type), None)
    module = getattr(torch, device_type, None)
    if found is None and module is not None:
        found = getattr(module, what.format(device_type), None)
        if found is None and device_type == torch._C._get_privateuse1_backend_name():
            found = getattr(module, what.replace("_{}", ""), None)
    return found


def _autocast_dtype_before_2_4(device_type: str) -> torch.dtype:
    get = _before_2_4(device_type, "get_autocast_{}_dtype")
    if get is None:  # torch.get_autocast_gpu_dtype() was answered for any device type: CUDA's float16 for an XPU's bfloat16
        raise RuntimeError(f"autocast knows no device type {device_type!r} on torch {torch.__version__}")
    return get()


def _is_autocast_enabled_before_2_4(device_type: str) -> bool:
    enabled = _before_2_4(device_type, "is_autocast_{}_enabled")  # cpu, ipu, xla in torch; xpu, hpu in their module
    return bool(enabled()) if enabled is not None else False


@contextlib.contextmanager
def module_hooks_fire() -> Iterator[None]:
    """Inside the block, ``nn.TransformerEncoderLayer`` calls its submodules (``self_attn``, ``linear1``, ...) as
    modules where hooks are attached to them, instead of its fused fast path, which never calls them: torch >= 2.5
    leaves the fast path by itself then; torch 2.3 - 2.4 took it regardless (pytorch issue 128413), so that a hook
    on a submodule never fired and an intervention there changed nothing (an effect of 0). There the block switches
    the fast path off (``torch.backends.mha.set_fastpath_enabled(False)``; the fast path of ``nn.MultiheadAttention``
    too, one switch) and restores the setting on exit. A no-op on torch >= 2.5.

    Examples:
        >>> layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True).eval()
        >>> seen = []
        >>> handle = layer.linear1.register_forward_hook(lambda m, a, out: seen.append(out.shape))
        >>> with torch.no_grad(), module_hooks_fire():
        ...     _ = layer(torch.randn(3, 5, 8))
        >>> handle.remove()
        >>> seen
        [torch.Size([3, 5, 16])]
    """
    if _TORCH >= (2, 5):
        yield
        return
    with _fastpath_off():
        yield


@contextlib.contextmanager
def _fastpath_off() -> Iterator[None]:
    from torch.backends import mha

    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def functorch_wrapped(value: object) -> bool:
    """Whether ``value`` is a tensor that a ``torch.func`` transform wraps (``vmap``'s batched tensors, ``grad``'s and
    ``jacrev``'s): it has no storage of its own, and under ``vmap`` it refuses data-dependent control flow
    (``bool(t.any())``). ``False`` where torch has no functorch.

    Examples:
        >>> seen = []
        >>> _ = torch.func.vmap(lambda t: seen.append(functorch_wrapped(t)) or t)(torch.zeros(2, 3))
        >>> functorch_wrapped(torch.zeros(2)), seen
        (False, [True])
    """
    functorch = getattr(torch._C, "_functorch", None)
    return functorch is not None and isinstance(value, torch.Tensor) and functorch.is_functorch_wrapped_tensor(value)


__all__ = ["OutOfMemoryError", "autocast_dtype", "functorch_wrapped", "is_autocast_enabled", "module_hooks_fire"]
