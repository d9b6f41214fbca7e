"""Backdoors: triggers and their attack success rate, suspect classes and units, Neural Cleanse."""

from lightning_causal.causal.backdoor.mask_statistics import (
    compact_ratio,
    mask_concentration,
    norm_ratio,
)
from lightning_causal.causal.backdoor.neural_cleanse import (
    ReversedTriggers,
    neural_cleanse,
    reverse_engineer_triggers,
)
from lightning_causal.causal.backdoor.reverse import reverse_trigger
from lightning_causal.causal.backdoor.suspects import SuspectUnits, mad_anomaly_index, suspect_units
from lightning_causal.causal.backdoor.triggers import Trigger, attack_success_rate, trigger_effect

__all__ = [
    "ReversedTriggers",
    "SuspectUnits",
    "Trigger",
    "attack_success_rate",
    "compact_ratio",
    "mad_anomaly_index",
    "mask_concentration",
    "neural_cleanse",
    "norm_ratio",
    "reverse_engineer_triggers",
    "reverse_trigger",
    "suspect_units",
    "trigger_effect",
]
