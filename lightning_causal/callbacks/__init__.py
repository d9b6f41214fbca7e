"""Lightning callbacks."""

from lightning_causal.callbacks.audit import CausalAuditCallback
from lightning_causal.callbacks.pruning import causal_pruning_fn, causal_unit_scores

__all__ = ["CausalAuditCallback", "causal_pruning_fn", "causal_unit_scores"]
