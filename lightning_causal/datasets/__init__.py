"""Data for demos, benchmarks and tests, generated in memory (nothing is downloaded): a synthetic
fairness SCM with known ground truth and backdoor poisoning of a labelled image set."""

from lightning_causal.datasets.poisoning import (
    blended_trigger,
    patch_trigger,
    poison,
    shape_trigger,
)
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness

__all__ = ["blended_trigger", "make_synthetic_fairness", "patch_trigger", "poison", "shape_trigger"]
