"""Lightning callbacks."""

from lightning_causal.callbacks.audit import CausalAuditCallback
from lightning_causal.callbacks.monitoring import AuditEarlyStopping, AuditModelCheckpoint
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.callbacks.pruning import causal_pruning_fn, causal_unit_scores

__all__ = ["AuditEarlyStopping", "AuditModelCheckpoint", "CausalAuditCallback", "audit_model", "causal_pruning_fn", "causal_unit_scores"]
