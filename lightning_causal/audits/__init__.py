"""Audits: configurable units of analysis run by the callback; each returns an AuditResult."""

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.fairness import FairnessAudit
from lightning_causal.audits.input_effects import InputEffectAudit
from lightning_causal.audits.sobol import SobolAudit
from lightning_causal.audits.unit_importance import UnitImportanceAudit

__all__ = ["Audit", "AuditResult", "FairnessAudit", "InputEffectAudit", "Probe", "SobolAudit", "UnitImportanceAudit"]
