"""Lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d``) not built yet: their names (:func:`unbuilt_lazy_modules`),
the refusal of the code that sets ``requires_grad`` on every parameter (:func:`check_built`), which torch refuses on an
``UninitializedParameter`` without naming the module, and the refusal of an audit of such a model
(:func:`unbuilt_refusal`: ``audit_model``'s words, and ``audit_mode``'s for the estimators and audits called directly),
whose first pass would build them inside the audit."""

from __future__ import annotations

from torch import nn
from torch.nn.parameter import is_lazy

__all__ = ["NEVER_CALLED_LAZY", "check_built", "check_audited_built", "unbuilt_lazy_modules", "unbuilt_refusal"]


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


def unbuilt_refusal(model: nn.Module) -> str | None:
    """The words refusing an audit of ``model`` while a lazy module of it is not built (:func:`unbuilt_lazy_modules`),
    or ``None``: the audit's first pass would build it, its weights drawn inside the audit (whose random generators
    are then put back: the next draws repeat those numbers), and the model would not be left as found; a fit after the
    audit would start from those weights. ``audit_model`` raises them as a ``MisconfigurationException``,
    :func:`check_audited_built` as a ``ValueError``.

    Args:
        model: the model.

    Examples:
        >>> unbuilt_refusal(nn.Linear(2, 1)) is None
        True
        >>> unbuilt_refusal(nn.Sequential(nn.LazyLinear(2)))[:76]
        "Expected argument `model` to hold no lazy module not built yet but got ['0']"
    """
    lazy = unbuilt_lazy_modules(model)
    if not lazy:
        return None
    return (f"Expected argument `model` to hold no lazy module not built yet but got {lazy[:3]} (nn.LazyLinear, LazyConv2d "
            "before their first call): the audits' passes would build them from their own seeded generators and a fit "
            "after the audit would start from those weights; build them first, with one forward pass of a batch "
            f"(`model(x)`), or audit the trained model; {NEVER_CALLED_LAZY}")


def check_audited_built(model: nn.Module) -> None:
    """Refuse to audit ``model`` while a lazy module of it is not built: ``ValueError`` of :func:`unbuilt_refusal`'s
    words. Run on entering :func:`~lightning_causal.causal.engine.state.audit_mode`, which every estimator and audit
    enters before its first pass (``input_effects``, ``unit_effects``, ``CaptumBaseline.run`` called directly).

    Args:
        model: the model.

    Examples:
        >>> check_audited_built(nn.Linear(2, 1))
        >>> check_audited_built(nn.Sequential(nn.LazyLinear(2), nn.ReLU()))
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `model` to hold no lazy module not built yet but got ['0'] ...
    """
    words = unbuilt_refusal(model)
    if words is not None:
        raise ValueError(words)
