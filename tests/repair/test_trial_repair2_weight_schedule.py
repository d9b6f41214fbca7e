"""A repair term's weight schedule (a callable of the epoch) that returns no number at some epoch."""

import pytest

from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm


def test_a_schedule_returning_none_names_the_term_and_the_epoch():
    term = CounterfactualFairnessTerm(AttributeFlip(0), weight=lambda epoch: {0: 0.0, 2: 1.0}.get(epoch))
    assert term.weight_at(0) == 0.0 and term.weight_at(2) == 1.0
    # before the fix: TypeError "float() argument must be a string or a real number, not 'NoneType'"
    with pytest.raises(ValueError, match=r"term `counterfactual_fairness` at epoch 1 .* returned None"):
        term.weight_at(1)
    with pytest.raises(ValueError, match=r"at epoch 3 to be finite and >= 0 but got -1.0"):
        CounterfactualFairnessTerm(AttributeFlip(0), weight=lambda epoch: -1.0).weight_at(3)
