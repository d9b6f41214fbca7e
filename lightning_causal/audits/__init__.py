"""Audits: configurable units of analysis run by the callback; each returns an AuditResult.

Names load lazily, so that importing an audit that needs no Captum does not load Captum.
"""

from typing import TYPE_CHECKING

from lightning_causal._lazy import lazy_exports

_EXPORTS = {
    "Audit": "lightning_causal.audits.base",
    "AuditResult": "lightning_causal.audits.base",
    "Probe": "lightning_causal.audits.base",
    "BackdoorAudit": "lightning_causal.audits.backdoor",
    "CaptumBaseline": "lightning_causal.audits.captum_baseline",
    "CompareSettings": "lightning_causal.audits.captum_baseline",
    "CausalGraphAudit": "lightning_causal.audits.causal_graph",
    "CounterfactualAudit": "lightning_causal.audits.counterfactual",
    "LayerMapAudit": "lightning_causal.audits.layer_map",
    "FairnessAudit": "lightning_causal.audits.fairness",
    "InputEffectAudit": "lightning_causal.audits.input_effects",
    "SobolAudit": "lightning_causal.audits.sobol",
    "UnitImportanceAudit": "lightning_causal.audits.unit_importance",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # `X as X`: an explicit re-export for type checkers (mypy --strict, pyright)
    from lightning_causal.audits.backdoor import BackdoorAudit as BackdoorAudit
    from lightning_causal.audits.base import Audit as Audit
    from lightning_causal.audits.base import AuditResult as AuditResult
    from lightning_causal.audits.base import Probe as Probe
    from lightning_causal.audits.captum_baseline import CaptumBaseline as CaptumBaseline
    from lightning_causal.audits.captum_baseline import CompareSettings as CompareSettings
    from lightning_causal.audits.causal_graph import CausalGraphAudit as CausalGraphAudit
    from lightning_causal.audits.counterfactual import CounterfactualAudit as CounterfactualAudit
    from lightning_causal.audits.fairness import FairnessAudit as FairnessAudit
    from lightning_causal.audits.input_effects import InputEffectAudit as InputEffectAudit
    from lightning_causal.audits.layer_map import LayerMapAudit as LayerMapAudit
    from lightning_causal.audits.sobol import SobolAudit as SobolAudit
    from lightning_causal.audits.unit_importance import UnitImportanceAudit as UnitImportanceAudit
