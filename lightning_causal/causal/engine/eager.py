"""Compiled models (``torch.compile``) seen as their eager originals.

A graph compiled by TorchDynamo does not notice forward hooks registered after compilation: an
intervention on a compiled model would silently do nothing. The core therefore calls a compiled
model through its original module, runs every audit and every :func:`intervene` block under
``torch.compiler.set_stance("force_eager")`` (compiled code runs eagerly, hooks fire, nothing is
recompiled), and names modules as the user wrote them: ``"_orig_mod"`` path components are
dropped, so ``"conv1"`` names the same layer in ``model`` and in ``torch.compile(model)``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import torch
from torch import nn

from lightning_causal._compat import module_hooks_fire

__all__ = ["check_eager_possible", "eager_module", "force_eager", "is_compiled", "named_modules", "user_name"]

_ORIG = "_orig_mod"


def _optimized_type() -> type | None:
    """``torch.compile``'s wrapper class, or ``None`` while ``torch._dynamo.eval_frame`` (which defines
    it) is not imported: no model is compiled, nor unpickled as compiled, without importing it, and
    importing it here would cost a process that never compiles seconds (torch imports it lazily)."""
    return getattr(sys.modules.get("torch._dynamo.eval_frame"), "OptimizedModule", None)


def is_compiled(model: nn.Module) -> bool:
    """Whether ``model`` or one of its submodules is a ``torch.compile`` wrapper.

    Examples:
        >>> is_compiled(nn.Linear(2, 2))
        False
    """
    kind = _optimized_type()
    return kind is not None and any(isinstance(m, kind) for m in model.modules())


def eager_module(model: nn.Module) -> nn.Module:
    """The original module behind a ``torch.compile`` wrapper (``model`` itself otherwise).

    Examples:
        >>> m = nn.Linear(2, 2)
        >>> eager_module(m) is m
        True
    """
    kind = _optimized_type()
    while kind is not None and isinstance(model, kind):
        model = getattr(model, _ORIG)
    return model


def named_modules(model: nn.Module) -> dict[str, nn.Module]:
    """``named_modules()`` with ``_orig_mod`` components dropped (the first module of a name wins).

    Examples:
        >>> list(named_modules(nn.Sequential(nn.Linear(2, 2))))
        ['', '0']
    """
    out: dict[str, nn.Module] = {}
    kind = _optimized_type()
    for name, module in model.named_modules():
        if kind is not None and isinstance(module, kind):
            continue  # the wrapper: its original module follows under the same user-facing name
        clean = ".".join(part for part in name.split(".") if part and part != _ORIG)
        out.setdefault(clean, module)
    return out


def user_name(name: str) -> str:
    """``name`` with its ``_orig_mod`` components dropped: a name copied from a compiled model's own
    ``named_modules()`` (``"body._orig_mod.conv1"``) names the layer :func:`named_modules` calls ``"body.conv1"``.

    Examples:
        >>> user_name("body._orig_mod.conv1"), user_name("_orig_mod.fc:input")
        ('body.conv1', 'fc:input')
    """
    return ".".join(part for part in name.split(".") if part != _ORIG) if _ORIG in name.split(".") else name


@contextlib.contextmanager
def force_eager() -> Iterator[None]:
    """Run compiled code eagerly inside the block, so that hooks registered now take effect (and, on torch < 2.5,
    :func:`~lightning_causal._compat.module_hooks_fire`: ``nn.TransformerEncoderLayer`` calls its hooked submodules).

    A no-op on torch versions without ``torch.compiler.set_stance`` (< 2.6), where compiled models
    are refused by :func:`check_eager_possible`, and while ``torch._dynamo`` is not imported:
    ``torch.compile`` imports it, so nothing is compiled yet, and ``set_stance`` would import it
    (seconds, in a process that never compiles). Code first compiled inside the block (a forward that
    calls ``torch.compile`` itself) is then compiled as usual, with the block's hooks in place.
    """
    set_stance = getattr(getattr(torch, "compiler", None), "set_stance", None)
    with module_hooks_fire():  # torch < 2.5: also nn.TransformerEncoderLayer's fused fast path off
        if set_stance is None or "torch._dynamo" not in sys.modules:
            yield
            return
        with set_stance("force_eager"):
            yield


def check_eager_possible(model: nn.Module) -> None:
    """Raise ``RuntimeError`` for a compiled ``model`` on a torch too old to run it eagerly."""
    if is_compiled(model) and getattr(getattr(torch, "compiler", None), "set_stance", None) is None:
        raise RuntimeError(
            "Interventions on a torch.compile'd model need torch >= 2.6 (torch.compiler.set_stance); "
            "pass the original module instead"
        )
