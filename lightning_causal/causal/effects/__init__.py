"""Causal effects of interventions on input features and on hidden units."""

from lightning_causal.causal.effects.input_effects import (
    average_causal_effect,
    input_effects,
    interventional_expectations,
)
from lightning_causal.causal.effects.unit_effects import unit_effects

__all__ = ["average_causal_effect", "input_effects", "interventional_expectations", "unit_effects"]
