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
    **{n: "lightning_causal.callbacks" for n in ("AuditEarlyStopping", "AuditModelCheckpoint", "CausalAuditCallback")},
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

if TYPE_CHECKING:  # static analysers see the eager imports
    from lightning_causal.audits import (  # noqa: F401
        Audit,
        AuditResult,
        BackdoorAudit,
        CaptumBaseline,
        CausalGraphAudit,
        CounterfactualAudit,
        FairnessAudit,
        InputEffectAudit,
        LayerMapAudit,
        Probe,
        SobolAudit,
        UnitImportanceAudit,
    )
    from lightning_causal.callbacks import (  # noqa: F401
        AuditEarlyStopping,
        AuditModelCheckpoint,
        CausalAuditCallback,
    )
    from lightning_causal.causal import *  # noqa: F401,F403
    from lightning_causal.repair import (  # noqa: F401
        BackdoorSuppressionTerm,
        CausalRepairModule,
        CounterfactualFairnessTerm,
        RepairTerm,
    )
    from lightning_causal.reporting.json_report import load_report  # noqa: F401
