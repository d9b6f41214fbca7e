"""Lightning callbacks."""

from lightning_causal.callbacks.audit import CausalAuditCallback

__all__ = ["CausalAuditCallback"]
