"""Audits: configurable units of analysis run by the callback; each returns an AuditResult."""

from lightning_causal.audits.backdoor import BackdoorAudit
from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline, CompareSettings
from lightning_causal.audits.fairness import FairnessAudit
from lightning_causal.audits.graph import CausalGraphAudit, CounterfactualAudit, LayerMapAudit
from lightning_causal.audits.input_effects import InputEffectAudit
from lightning_causal.audits.sobol import SobolAudit
from lightning_causal.audits.unit_importance import UnitImportanceAudit

__all__ = ["BackdoorAudit", "CaptumBaseline", "CompareSettings", "CausalGraphAudit", "CounterfactualAudit", "LayerMapAudit", "Audit", "AuditResult", "FairnessAudit", "InputEffectAudit", "Probe", "SobolAudit", "UnitImportanceAudit"]
