"""Data for demos, benchmarks and tests, generated in memory (nothing is downloaded): a synthetic
fairness SCM with known ground truth and backdoor poisoning of a labelled image set."""

from lightning_causal.datasets.poisoning import patch_trigger, poison
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness

__all__ = ["make_synthetic_fairness", "patch_trigger", "poison"]
