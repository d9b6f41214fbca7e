"""lightning_causal: causal analysis and causal repair of neural networks in the Lightning loop."""

from lightning_causal.audits import (
    Audit,
    AuditResult,
    InputEffectAudit,
    Probe,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.causal import (
    AdditiveNoiseSCM,
    AttributeFlip,
    EmpiricalMarginals,
    GaussianCopula,
    Intervention,
    MeanOf,
    Resample,
    Scale,
    SetTo,
    SobolResult,
    Zero,
    average_causal_effect,
    capture,
    counterfactual_fairness_gap,
    input_effects,
    intervene,
    interventional_expectations,
    intrinsic_causal_contributions,
    patch_mask,
    sobol_indices,
    unit_effects,
)
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm, RepairTerm
from lightning_causal.reporting import load_report

__version__ = "0.1.0"

__all__ = [
    "AdditiveNoiseSCM",
    "AttributeFlip",
    "CausalRepairModule",
    "CounterfactualFairnessTerm",
    "FairnessAudit",
    "RepairTerm",
    "counterfactual_fairness_gap",
    "Audit",
    "AuditResult",
    "CausalAuditCallback",
    "InputEffectAudit",
    "Intervention",
    "MeanOf",
    "Probe",
    "Resample",
    "Scale",
    "SobolAudit",
    "SobolResult",
    "EmpiricalMarginals",
    "GaussianCopula",
    "intrinsic_causal_contributions",
    "sobol_indices",
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
