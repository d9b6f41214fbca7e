"""The ordinal hint of an out-of-range target (f7c328bf: rank K - 1 of an ordinal head's K - 1 cumulative logits) is
left out where the outputs are class probabilities or log-probabilities (a model ending in Softmax or LogSoftmax): one
decision's classes, whose index K is a class numbered from 1, not a rank (the 10-class digits classifier asked for
``target=10`` was told of '11 ranks of an ordinal head's 10 cumulative logits')."""

import pytest
import torch
from torch import nn

from lightning_causal import counterfactual_explanation, input_effects


def _classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 5))


@pytest.mark.parametrize("end", [nn.Softmax(1), nn.LogSoftmax(1)], ids=["softmax", "log_softmax"])
def test_probabilities_asked_for_one_class_too_many_say_nothing_of_ranks(end):
    model, x = nn.Sequential(_classifier(), end), torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"but got \[5\] \(the model returns 5 outputs\)$"):
        input_effects(model, x, target=5)
    with pytest.raises(ValueError, match=r"but got \[5\] \(the model returns 5 outputs\)$"):
        counterfactual_explanation(model, x[:1], target_class=5)


def test_raw_outputs_keep_the_hint():
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"\(the model returns 5 outputs; e\.g\. a class numbered from 1; or 6 ranks of an ordinal head's 5 cumulative"):
        input_effects(_classifier(), x, target=5)
