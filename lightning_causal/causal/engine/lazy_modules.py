"""Lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d``) not built yet: their names (:func:`unbuilt_lazy_modules`) and
the refusal of the code that sets ``requires_grad`` on every parameter (:func:`check_built`), which torch refuses on an
``UninitializedParameter`` without naming the module."""

from __future__ import annotations

from torch import nn
from torch.nn.parameter import is_lazy

__all__ = ["NEVER_CALLED_LAZY", "check_built", "unbuilt_lazy_modules"]


NEVER_CALLED_LAZY = ("a lazy module the forward never calls (a head kept for later) stays unbuilt by any pass: remove it "
                     "from the model, or build it by calling it once on a batch of its input (`model.head(torch.zeros(1, d))`)")


def unbuilt_lazy_modules(model: nn.Module) -> list[str]:
    """The names of ``model``'s modules holding a parameter or buffer not built yet (``nn.LazyLinear``, ``LazyConv2d``
    before their first call: ``torch.nn.parameter.is_lazy``), ``"(model)"`` for the model itself.

    Args:
        model: the model.

    Examples:
        >>> unbuilt_lazy_modules(nn.Sequential(nn.LazyLinear(2), nn.ReLU(), nn.Linear(2, 1)))
        ['0']
        >>> unbuilt_lazy_modules(nn.Linear(2, 1))
        []
    """
    return [name or "(model)" for name, module in model.named_modules()
            if any(is_lazy(t) for t in [*module.parameters(recurse=False), *module.buffers(recurse=False)])]


def check_built(model: nn.Module) -> None:
    """Refuse ``model`` while a lazy module of it is not built: ``ValueError`` naming the modules (torch's own error,
    raised by ``requires_grad_`` on an ``UninitializedParameter``, names none). Run before the loops that freeze the
    parameters and set their ``requires_grad`` back (``frozen_params``, ``freeze``, the attribution context, the
    callback's ``no_trace``).

    Args:
        model: the model.

    Examples:
        >>> check_built(nn.Linear(2, 1))
        >>> check_built(nn.Sequential(nn.LazyLinear(2), nn.ReLU()))
        Traceback (most recent call last):
        ...
        ValueError: Expected the model's lazy modules to be built, but ['0'] hold parameters not built yet ...
    """
    unbuilt = unbuilt_lazy_modules(model)
    if unbuilt:
        raise ValueError(
            f"Expected the model's lazy modules to be built, but {unbuilt[:3]} hold parameters not built yet "
            "(`torch.nn.parameter.UninitializedParameter`: an `nn.LazyLinear` before its first call), whose "
            "`requires_grad` cannot be set or restored: run the model once on a batch of its input first (`model(x)`); "
            f"{NEVER_CALLED_LAZY}")
