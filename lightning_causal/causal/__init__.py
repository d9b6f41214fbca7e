"""Pure-PyTorch causal core: interventions, effects, graphs, Sobol'/ICC, SCMs, counterfactuals.

Imports nothing from Lightning, Captum, TensorBoard or matplotlib.
"""

from lightning_causal.causal._state import audit_mode, rng_preserved
from lightning_causal.causal.backdoor import (
    Trigger,
    attack_success_rate,
    mad_anomaly_index,
    suspect_units,
    trigger_effect,
)
from lightning_causal.causal.counterfactuals import Counterfactuals, counterfactual_explanation
from lightning_causal.causal.effects import (
    average_causal_effect,
    input_effects,
    interventional_expectations,
    unit_effects,
)
from lightning_causal.causal.fairness import (
    carrier_unit_effects,
    counterfactual_fairness_gap,
    demographic_parity_difference,
    equalized_odds_difference,
    group_rates,
)
from lightning_causal.causal.graph import causal_graph, graph_stability
from lightning_causal.causal.graph_data import CausalGraph
from lightning_causal.causal.groups import column_mask, patch_mask
from lightning_causal.causal.icc import ICCResult, intrinsic_causal_contributions, shapley_weights
from lightning_causal.causal.interventions import (
    Intervention,
    MeanOf,
    Resample,
    Scale,
    SetTo,
    Zero,
    capture,
    intervene,
    resolve_module,
)
from lightning_causal.causal.layer_map import LayerCausalMap, layer_causal_map, linear_cka
from lightning_causal.causal.neural_cleanse import reverse_engineer_triggers
from lightning_causal.causal.poisoning import patch_trigger, poison
from lightning_causal.causal.samplers import (
    ClassProbability,
    EmpiricalMarginals,
    GaussianCopula,
    IndependentNormal,
    UniformCube,
    class_probability,
)
from lightning_causal.causal.scm import AdditiveNoiseSCM, AttributeFlip, resolve_counterfactual
from lightning_causal.causal.sobol import InverseCDFSampler, SobolResult, sobol_indices
from lightning_causal.causal.synthetic import make_synthetic_fairness

__all__ = [
    "CausalGraph",
    "Counterfactuals",
    "LayerCausalMap",
    "Trigger",
    "attack_success_rate",
    "causal_graph",
    "counterfactual_explanation",
    "graph_stability",
    "layer_causal_map",
    "linear_cka",
    "mad_anomaly_index",
    "patch_trigger",
    "poison",
    "reverse_engineer_triggers",
    "suspect_units",
    "trigger_effect",
    "AdditiveNoiseSCM",
    "AttributeFlip",
    "carrier_unit_effects",
    "counterfactual_fairness_gap",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "group_rates",
    "make_synthetic_fairness",
    "resolve_counterfactual",
    "ClassProbability",
    "EmpiricalMarginals",
    "GaussianCopula",
    "ICCResult",
    "IndependentNormal",
    "InverseCDFSampler",
    "SobolResult",
    "UniformCube",
    "class_probability",
    "intrinsic_causal_contributions",
    "shapley_weights",
    "sobol_indices",
    "Intervention",
    "MeanOf",
    "Resample",
    "Scale",
    "SetTo",
    "Zero",
    "audit_mode",
    "average_causal_effect",
    "capture",
    "column_mask",
    "input_effects",
    "intervene",
    "interventional_expectations",
    "patch_mask",
    "resolve_module",
    "rng_preserved",
    "unit_effects",
]
