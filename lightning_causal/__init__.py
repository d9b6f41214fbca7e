"""lightning_causal: causal analysis and causal repair of neural networks in the Lightning loop.

Names load lazily: ``import lightning_causal`` is cheap, and ``lightning_causal.causal`` (the
pure-PyTorch core) never imports Lightning, Captum, TensorBoard or matplotlib.
"""

from typing import TYPE_CHECKING

from lightning_causal._lazy import lazy_exports

__version__ = "0.1.0"

_AUDITS = "lightning_causal.audits"
_CORE = "lightning_causal.causal"
_REPAIR = "lightning_causal.repair"
_EXPORTS = {
    **{n: _AUDITS for n in (
        "Audit", "AuditResult", "BackdoorAudit", "CaptumBaseline", "CausalGraphAudit", "CounterfactualAudit",
        "FairnessAudit", "InputEffectAudit", "LayerMapAudit", "Probe", "SobolAudit", "UnitImportanceAudit",
    )},
    **{n: "lightning_causal.callbacks" for n in ("AuditEarlyStopping", "AuditModelCheckpoint", "CausalAuditCallback", "audit_model")},
    **{n: _CORE for n in (
        "AdditiveNoiseSCM", "AttributeFlip", "CausalGraph", "EmpiricalMarginals", "GaussianCopula", "Intervention",
        "MeanOf", "Patch", "Resample", "Scale", "SetTo", "SobolResult", "TokenSwap", "Trigger", "Zero", "attack_success_rate",
        "average_causal_effect", "capture", "causal_graph", "counterfactual_explanation", "counterfactual_fairness_gap",
        "input_effects", "intervene", "interventional_expectations", "intrinsic_causal_contributions",
        "layer_causal_map", "patch_mask", "reverse_engineer_triggers", "sobol_indices", "unit_effects",
    )},
    **{n: _REPAIR for n in ("BackdoorSuppressionTerm", "CausalRepairModule", "CounterfactualFairnessTerm", "RepairTerm")},
    "load_report": "lightning_causal.reporting.json_report",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # static analysers see the eager imports; `X as X`: an explicit re-export (mypy --strict, pyright)
    from lightning_causal.audits import Audit as Audit
    from lightning_causal.audits import AuditResult as AuditResult
    from lightning_causal.audits import BackdoorAudit as BackdoorAudit
    from lightning_causal.audits import CaptumBaseline as CaptumBaseline
    from lightning_causal.audits import CausalGraphAudit as CausalGraphAudit
    from lightning_causal.audits import CounterfactualAudit as CounterfactualAudit
    from lightning_causal.audits import FairnessAudit as FairnessAudit
    from lightning_causal.audits import InputEffectAudit as InputEffectAudit
    from lightning_causal.audits import LayerMapAudit as LayerMapAudit
    from lightning_causal.audits import Probe as Probe
    from lightning_causal.audits import SobolAudit as SobolAudit
    from lightning_causal.audits import UnitImportanceAudit as UnitImportanceAudit
    from lightning_causal.callbacks import AuditEarlyStopping as AuditEarlyStopping
    from lightning_causal.callbacks import AuditModelCheckpoint as AuditModelCheckpoint
    from lightning_causal.callbacks import CausalAuditCallback as CausalAuditCallback
    from lightning_causal.callbacks import audit_model as audit_model
    from lightning_causal.causal import AdditiveNoiseSCM as AdditiveNoiseSCM
    from lightning_causal.causal import AttributeFlip as AttributeFlip
    from lightning_causal.causal import CausalGraph as CausalGraph
    from lightning_causal.causal import EmpiricalMarginals as EmpiricalMarginals
    from lightning_causal.causal import GaussianCopula as GaussianCopula
    from lightning_causal.causal import Intervention as Intervention
    from lightning_causal.causal import MeanOf as MeanOf
    from lightning_causal.causal import Patch as Patch
    from lightning_causal.causal import Resample as Resample
    from lightning_causal.causal import Scale as Scale
    from lightning_causal.causal import SetTo as SetTo
    from lightning_causal.causal import SobolResult as SobolResult
    from lightning_causal.causal import TokenSwap as TokenSwap
    from lightning_causal.causal import Trigger as Trigger
    from lightning_causal.causal import Zero as Zero
    from lightning_causal.causal import attack_success_rate as attack_success_rate
    from lightning_causal.causal import average_causal_effect as average_causal_effect
    from lightning_causal.causal import capture as capture
    from lightning_causal.causal import causal_graph as causal_graph
    from lightning_causal.causal import counterfactual_explanation as counterfactual_explanation
    from lightning_causal.causal import counterfactual_fairness_gap as counterfactual_fairness_gap
    from lightning_causal.causal import input_effects as input_effects
    from lightning_causal.causal import intervene as intervene
    from lightning_causal.causal import interventional_expectations as interventional_expectations
    from lightning_causal.causal import (
        intrinsic_causal_contributions as intrinsic_causal_contributions,
    )
    from lightning_causal.causal import layer_causal_map as layer_causal_map
    from lightning_causal.causal import patch_mask as patch_mask
    from lightning_causal.causal import reverse_engineer_triggers as reverse_engineer_triggers
    from lightning_causal.causal import sobol_indices as sobol_indices
    from lightning_causal.causal import unit_effects as unit_effects
    from lightning_causal.repair import BackdoorSuppressionTerm as BackdoorSuppressionTerm
    from lightning_causal.repair import CausalRepairModule as CausalRepairModule
    from lightning_causal.repair import CounterfactualFairnessTerm as CounterfactualFairnessTerm
    from lightning_causal.repair import RepairTerm as RepairTerm
    from lightning_causal.reporting.json_report import load_report as load_report
