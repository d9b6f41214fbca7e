"""Structural causal models of tabular data, counterfactuals of a sensitive attribute and the
fairness metrics built on them."""

from lightning_causal.causal.scm.attribute_flip import AttributeFlip, resolve_counterfactual
from lightning_causal.causal.scm.counterfactual import CallableCounterfactual, Counterfactual
from lightning_causal.causal.scm.fairness import (
    carrier_unit_effects,
    counterfactual_fairness_gap,
    demographic_parity_difference,
    equalized_odds_difference,
    group_rates,
)
from lightning_causal.causal.scm.intersections import Intersections, WorldGaps, world_gaps
from lightning_causal.causal.scm.scm import AdditiveNoiseSCM
from lightning_causal.causal.scm.scm_flip import SCMFlip
from lightning_causal.causal.scm.structural_functions import (
    LinearFunction,
    MLPFunction,
    StructuralFunction,
)
from lightning_causal.causal.scm.token_swap import TokenSwap

__all__ = [
    "AdditiveNoiseSCM",
    "AttributeFlip",
    "CallableCounterfactual",
    "Counterfactual",
    "Intersections",
    "LinearFunction",
    "MLPFunction",
    "SCMFlip",
    "StructuralFunction",
    "TokenSwap",
    "WorldGaps",
    "carrier_unit_effects",
    "counterfactual_fairness_gap",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "group_rates",
    "resolve_counterfactual",
    "world_gaps",
]
