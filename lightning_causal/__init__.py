"""lightning_causal."""
