"""The do-operator on hidden units: interventions, the :func:`intervene` context manager, and
:func:`capture` to record activations.

A *site* is a module path from ``model.named_modules()``, or ``"<module>:input"`` for the module's
first positional input (:mod:`~lightning_causal.causal.engine.input_sites`); an intervention
replaces that module's output (or input) (a tensor whose dimension 1 holds the units by default: conv channels or neurons),
optionally only for a selection of ``units``. ``unit_dim=`` and ``num_heads=`` place the units
elsewhere (the neurons of ``[N, T, D]`` hidden states with ``unit_dim=-1``; attention heads of
``[N, T, H * d]`` with ``num_heads=H``; see :mod:`~lightning_causal.causal.engine.units`).

The code lives in modules named for what they hold, re-exported here (this import path stays):
:mod:`~lightning_causal.causal.engine.unit_interventions` (``Intervention``, ``Zero``, ``SetTo``,
``MeanOf``, ``Resample``, ``Scale``), :mod:`~lightning_causal.causal.engine.intervention_hooks`
(``intervene``, ``capture``) and :mod:`~lightning_causal.causal.engine.module_sites`
(``resolve_module``, ``module_output``, ``replace_output``).
"""

from __future__ import annotations

from lightning_causal.causal.engine.intervention_hooks import capture, intervene
from lightning_causal.causal.engine.module_sites import (
    module_output,
    replace_output,
    resolve_module,
)
from lightning_causal.causal.engine.unit_interventions import (
    Intervention,
    MeanOf,
    Patch,
    Resample,
    Scale,
    SetTo,
    Zero,
)

__all__ = [
    "module_output",
    "replace_output",
    "Intervention",
    "Zero",
    "SetTo",
    "Patch",
    "MeanOf",
    "Resample",
    "Scale",
    "intervene",
    "capture",
    "resolve_module",
]
