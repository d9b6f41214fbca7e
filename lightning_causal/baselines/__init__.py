"""Captum attributions as the baseline, and the metrics that compare explanations."""

from lightning_causal.baselines.captum_methods import (
    LAYER_METHOD_NAMES,
    METHOD_NAMES,
    attribute,
    layer_attribute,
)
from lightning_causal.baselines.metrics import (
    aggregate_to_groups,
    curve_auc,
    infidelity,
    kendall,
    perturbation_curve,
    sensitivity,
    spearman,
    stability,
    topk_overlap,
)

__all__ = [
    "LAYER_METHOD_NAMES",
    "METHOD_NAMES",
    "aggregate_to_groups",
    "attribute",
    "curve_auc",
    "infidelity",
    "kendall",
    "layer_attribute",
    "perturbation_curve",
    "sensitivity",
    "spearman",
    "stability",
    "topk_overlap",
]
