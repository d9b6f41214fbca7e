"""Review of 5e154c5f: norm_statistics and ReversedTriggers took any `unattacked`: a class past the norms raised torch's
'index 5 is out of bounds for dimension 0 with size 3', and -1 set the last class's index and ratio to NaN while the
index rule, which compares class numbers with -1, still flagged that class."""

import pytest
import torch

from lightning_causal.causal import Trigger
from lightning_causal.causal.backdoor.flagging import ReversedTriggers, norm_statistics

NORMS = torch.tensor([0.01, 2.0, 4.0, 6.0])


@pytest.mark.parametrize("bad", [4, -1, 1.0, True])
def test_norm_statistics_names_an_unattacked_entry_that_is_no_class(bad):
    with pytest.raises(ValueError, match=rf"Expected argument `unattacked` to be an int in \[0, 3\].* but got {bad!r}"):
        norm_statistics(NORMS, unattacked=[bad])


def test_reversed_triggers_refuses_it_too_even_with_its_ratio_given():
    triggers = [Trigger(torch.zeros(4), 0.0, target=c) for c in range(4)]
    given = torch.tensor([0.0, 0.0, 0.0, 9.0])  # the last class's index: above the threshold of 2
    with pytest.raises(ValueError, match=r"`unattacked`.*but got -1"):  # was flagged: [3], its ratio NaN
        ReversedTriggers(triggers, given, NORMS, torch.ones(4), torch.ones(4), unattacked=[-1])
    with pytest.raises(ValueError, match=r"`unattacked`.*but got 7"):
        ReversedTriggers(triggers, given, NORMS, torch.ones(4), torch.ones(4), norm_ratio=torch.ones(4), unattacked=[7])
    assert ReversedTriggers(triggers, given, NORMS, torch.ones(4), torch.ones(4), unattacked=[3]).flagged == []
