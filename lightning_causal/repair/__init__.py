"""Causal repair during fine-tuning: CausalRepairModule and its loss terms."""

from lightning_causal.repair.backdoor import BackdoorSuppressionTerm
from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.fairness import CounterfactualFairnessTerm
from lightning_causal.repair.module import CausalRepairModule

__all__ = ["BackdoorSuppressionTerm", "CausalRepairModule", "CounterfactualFairnessTerm", "RepairTerm"]
