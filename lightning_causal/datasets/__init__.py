"""Data for demos, benchmarks and tests, generated in memory (nothing is downloaded): a synthetic
fairness SCM with known ground truth, backdoor poisoning of a labelled image set, and a synthetic
text corpus with marker tokens and a planted identity-term bias."""

from lightning_causal.datasets.poisoning import (
    blended_trigger,
    patch_trigger,
    poison,
    shape_trigger,
)
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness
from lightning_causal.datasets.synthetic_text import make_synthetic_text

__all__ = [
    "blended_trigger",
    "make_synthetic_fairness",
    "make_synthetic_text",
    "patch_trigger",
    "poison",
    "shape_trigger",
]
