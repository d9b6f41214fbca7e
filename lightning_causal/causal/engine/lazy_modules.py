"""Lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d``) not built yet: their names (:func:`unbuilt_lazy_modules`),
the refusal of the code that sets ``requires_grad`` on every parameter (:func:`check_built`), which torch refuses on an
``UninitializedParameter`` without naming the module, and the refusal of an audit of such a model, whose first pass
would build them inside the audit (:func:`unbuilt_refusal`'s words, ``audit_model``'s; ``check_built(audited=True)``
raises them on entering ``audit_mode``, for the estimators and audits called directly)."""

from __future__ import annotations

from torch import nn
from torch.nn.parameter import is_lazy

__all__ = ["NEVER_CALLED_LAZY", "check_built", "unbuilt_lazy_modules", "unbuilt_refusal"]


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


def unbuilt_refusal(model: nn.Module, audited: bool = True) -> str | None:
    """The words refusing ``model`` while a lazy module of it is not built (:func:`unbuilt_lazy_modules`), or ``None``.
    With ``audited`` (the default), those refusing an audit: its first pass would build it, its weights drawn inside
    the audit (whose random generators are then put back: the next draws repeat those numbers), and the model would
    not be left as found; a fit after the audit would start from those weights. ``audit_model`` raises them as a
    ``MisconfigurationException``, :func:`check_built` as a ``ValueError``. Without it, those refusing to set every
    parameter's ``requires_grad`` (torch's own error on an ``UninitializedParameter`` names no module).

    Args:
        model: the model.
        audited: the words refusing an audit of ``model``; ``False``: those refusing to set its ``requires_grad``.

    Examples:
        >>> unbuilt_refusal(nn.Linear(2, 1)) is None
        True
        >>> unbuilt_refusal(nn.Sequential(nn.LazyLinear(2)))[:76]
        "Expected argument `model` to hold no lazy module not built yet but got ['0']"
        >>> unbuilt_refusal(nn.Sequential(nn.LazyLinear(2)), audited=False)[:72]
        "Expected the model's lazy modules to be built, but ['0'] hold parameters"
    """
    lazy = unbuilt_lazy_modules(model)
    if not lazy:
        return None
    if not audited:
        return (f"Expected the model's lazy modules to be built, but {lazy[:3]} hold parameters not built yet "
                "(`torch.nn.parameter.UninitializedParameter`: an `nn.LazyLinear` before its first call), whose "
                "`requires_grad` cannot be set or restored: run the model once on a batch of its input first (`model(x)`); "
                f"{NEVER_CALLED_LAZY}")
    return (f"Expected argument `model` to hold no lazy module not built yet but got {lazy[:3]} (nn.LazyLinear, LazyConv2d "
            "before their first call): the audits' passes would build them from their own seeded generators and a fit "
            "after the audit would start from those weights; build them first, with one forward pass of a batch "
            f"(`model(x)`), or audit the trained model; {NEVER_CALLED_LAZY}")


def check_built(model: nn.Module, audited: bool = False) -> None:
    """Refuse ``model`` while a lazy module of it is not built: ``ValueError`` of :func:`unbuilt_refusal`'s words,
    naming the modules. Run before the loops that freeze the parameters and set their ``requires_grad`` back
    (``frozen_params``, ``freeze``, the attribution context, the callback's ``no_trace``), and with ``audited`` on
    entering :func:`~lightning_causal.causal.engine.state.audit_mode`, which every estimator and audit enters before
    its first pass (``input_effects``, ``unit_effects``, ``CaptumBaseline.run`` called directly).

    Args:
        model: the model.
        audited: refuse an audit of ``model`` (its first pass would build the modules), not the setting of its
            ``requires_grad``.

    Examples:
        >>> check_built(nn.Linear(2, 1))
        >>> check_built(nn.Sequential(nn.LazyLinear(2), nn.ReLU()))
        Traceback (most recent call last):
        ...
        ValueError: Expected the model's lazy modules to be built, but ['0'] hold parameters not built yet ...
        >>> check_built(nn.Sequential(nn.LazyLinear(2), nn.ReLU()), audited=True)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `model` to hold no lazy module not built yet but got ['0'] ...
    """
    words = unbuilt_refusal(model, audited)
    if words is not None:
        raise ValueError(words)
