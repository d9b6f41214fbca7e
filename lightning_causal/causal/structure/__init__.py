"""The structure of a network's decisions: causal explanatory graphs, the layer causal map and
counterfactual explanations."""

from lightning_causal.causal.structure.counterfactuals import (
    Counterfactuals,
    CounterfactualSettings,
    OutsideBoundsWarning,
    counterfactual_explanation,
)
from lightning_causal.causal.structure.faithfulness import graph_faithfulness
from lightning_causal.causal.structure.graph import causal_graph, graph_stability
from lightning_causal.causal.structure.graph_data import CausalGraph
from lightning_causal.causal.structure.layer_map import LayerCausalMap, layer_causal_map, linear_cka

__all__ = [
    "CausalGraph",
    "CounterfactualSettings",
    "Counterfactuals",
    "LayerCausalMap",
    "OutsideBoundsWarning",
    "causal_graph",
    "counterfactual_explanation",
    "graph_faithfulness",
    "graph_stability",
    "layer_causal_map",
    "linear_cka",
]
