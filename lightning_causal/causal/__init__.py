"""Pure-PyTorch causal core: interventions, effects, graphs, Sobol'/ICC, SCMs, counterfactuals.

Imports nothing from Lightning, Captum, TensorBoard or matplotlib. Organised by concern:
``engine`` (interventions, the row engine, groups, ranking: what every estimator uses),
``effects``, ``structure`` (graphs, layer map, counterfactual explanations), ``sensitivity``
(Sobol', ICC), ``scm`` (SCMs and fairness) and ``backdoor``. This package re-exports the
estimators and the types they take and return.
"""

from lightning_causal.causal.backdoor import (
    ReversedTriggers,
    SuspectUnits,
    Trigger,
    attack_success_rate,
    mad_anomaly_index,
    neural_cleanse,
    reverse_engineer_triggers,
    reverse_trigger,
    suspect_units,
    trigger_effect,
)
from lightning_causal.causal.effects import (
    average_causal_effect,
    input_effects,
    interventional_expectations,
    unit_effects,
)
from lightning_causal.causal.engine import (
    ConstantGroupsWarning,
    Intervention,
    MeanOf,
    Patch,
    ProbeContentsWarning,
    RepeatedCallsWarning,
    RepeatedSamplesWarning,
    Resample,
    Scale,
    SetTo,
    UnreachedSiteWarning,
    Zero,
    capture,
    column_mask,
    intervene,
    patch_mask,
)
from lightning_causal.causal.engine.forward_args import mark_whole
from lightning_causal.causal.engine.token_ids import FractionalCodeWarning
from lightning_causal.causal.scm import (
    AdditiveNoiseSCM,
    AttributeFlip,
    Counterfactual,
    Intersections,
    SCMFlip,
    TokenSwap,
    WorldGaps,
    carrier_unit_effects,
    counterfactual_fairness_gap,
    demographic_parity_difference,
    equalized_odds_difference,
    group_rates,
    world_gaps,
)
from lightning_causal.causal.sensitivity import (
    ClassProbability,
    ConstantOutputWarning,
    EmpiricalMarginals,
    GaussianCopula,
    ICCResult,
    IndependentNormal,
    SobolResult,
    UniformCube,
    class_probability,
    intrinsic_causal_contributions,
    sobol_indices,
)
from lightning_causal.causal.structure import (
    CausalGraph,
    Counterfactuals,
    CounterfactualSettings,
    LayerCausalMap,
    OutsideBoundsWarning,
    causal_graph,
    counterfactual_explanation,
    graph_faithfulness,
    graph_stability,
    layer_causal_map,
)

__all__ = [
    # interventions
    "Intervention",
    "MeanOf",
    "Patch",
    "Resample",
    "Scale",
    "SetTo",
    "Zero",
    "capture",
    "intervene",
    "column_mask",
    "patch_mask",
    # forward arguments every sample reads whole (a support set whose rows equal the samples' by chance)
    "mark_whole",
    # warnings about the samples given (filter them by category)
    "ConstantGroupsWarning",
    "ProbeContentsWarning",
    "RepeatedSamplesWarning",
    # warnings about the modules named as sites (filter them by category)
    "RepeatedCallsWarning",
    "UnreachedSiteWarning",
    # a warning about the values set: a fraction of a category code the model casts to indices
    "FractionalCodeWarning",
    # effects
    "average_causal_effect",
    "input_effects",
    "interventional_expectations",
    "unit_effects",
    # structure
    "CausalGraph",
    "Counterfactuals",
    "CounterfactualSettings",
    "LayerCausalMap",
    "OutsideBoundsWarning",
    "causal_graph",
    "counterfactual_explanation",
    "graph_faithfulness",
    "graph_stability",
    "layer_causal_map",
    # global sensitivity
    "ClassProbability",
    "ConstantOutputWarning",
    "EmpiricalMarginals",
    "GaussianCopula",
    "ICCResult",
    "IndependentNormal",
    "SobolResult",
    "UniformCube",
    "class_probability",
    "intrinsic_causal_contributions",
    "sobol_indices",
    # SCMs and fairness
    "AdditiveNoiseSCM",
    "AttributeFlip",
    "Counterfactual",
    "Intersections",
    "SCMFlip",
    "TokenSwap",
    "WorldGaps",
    "carrier_unit_effects",
    "counterfactual_fairness_gap",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "group_rates",
    "world_gaps",
    # backdoors
    "ReversedTriggers",
    "SuspectUnits",
    "Trigger",
    "attack_success_rate",
    "mad_anomaly_index",
    "neural_cleanse",
    "reverse_engineer_triggers",
    "reverse_trigger",
    "suspect_units",
    "trigger_effect",
]
