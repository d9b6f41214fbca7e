"""Captum attributions as the baseline, and the metrics that compare explanations.

The rank statistics and the group reduction live in the causal core
(:mod:`lightning_causal.causal.engine.ranking`, :mod:`lightning_causal.causal.engine.groups`) and
are re-exported here beside the faithfulness and stability metrics.
"""

from lightning_causal.baselines.captum_methods import attribute, layer_attribute
from lightning_causal.baselines.input_layer_methods import input_layer_attribute
from lightning_causal.baselines.method_specs import (
    INPUT_LAYER_METHOD_NAMES,
    LAYER_METHOD_NAMES,
    METHOD_NAMES,
)
from lightning_causal.baselines.metrics import (
    curve_auc,
    infidelity,
    perturbation_curve,
    sensitivity,
    stability,
    token_stability,
)
from lightning_causal.causal.engine.groups import aggregate_to_groups, broadcast_groups
from lightning_causal.causal.engine.ranking import kendall, spearman, topk_overlap

__all__ = [
    "INPUT_LAYER_METHOD_NAMES",
    "LAYER_METHOD_NAMES",
    "METHOD_NAMES",
    "aggregate_to_groups",
    "attribute",
    "broadcast_groups",
    "curve_auc",
    "infidelity",
    "input_layer_attribute",
    "kendall",
    "layer_attribute",
    "perturbation_curve",
    "sensitivity",
    "spearman",
    "stability",
    "token_stability",
    "topk_overlap",
]
