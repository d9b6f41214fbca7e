"""lightning_causal: causal analysis and causal repair of neural networks in the Lightning loop."""

from lightning_causal.audits import Audit, AuditResult, InputEffectAudit, Probe, UnitImportanceAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.causal import (
    Intervention,
    MeanOf,
    Resample,
    Scale,
    SetTo,
    Zero,
    average_causal_effect,
    capture,
    input_effects,
    intervene,
    interventional_expectations,
    patch_mask,
    unit_effects,
)
from lightning_causal.reporting import load_report

__version__ = "0.1.0"

__all__ = [
    "Audit",
    "AuditResult",
    "CausalAuditCallback",
    "InputEffectAudit",
    "Intervention",
    "MeanOf",
    "Probe",
    "Resample",
    "Scale",
    "SetTo",
    "UnitImportanceAudit",
    "Zero",
    "average_causal_effect",
    "capture",
    "input_effects",
    "intervene",
    "interventional_expectations",
    "load_report",
    "patch_mask",
    "unit_effects",
]
