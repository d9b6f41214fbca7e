"""``attack_success_rate`` runs the samples whose label is not the trigger's target only; its refusal of a model
that depends on the batch named their places among those ("probe samples [0, 1] ... in the batch of 5"), not the
user's samples (2 and 3 of the 10 given), and the batch of 5 was none the user gave (leftovers_s32b). It now names the
user's indices and what the batch is."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.triggers import Trigger, attack_success_rate, trigger_effect


class _BatchMean(nn.Module):
    """Subtracts the batch's mean: each sample's output depends on the others."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x - x.mean(0, keepdim=True))


X = torch.rand(10, 4, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([1, 1, 0, 2, 1, 0, 0, 2, 1, 1])  # target 1: samples 2, 3, 5, 6, 7 are not of it
TRIGGER = Trigger(torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 0.0, 0.0]), target=1)


def test_the_refusal_names_the_users_samples_and_the_batch() -> None:
    with pytest.raises(ValueError, match=r"outputs of probe samples \[2, 3\] run alone differ from their outputs in the "
                                         r"batch of the 5 samples whose label is not the target 1 \(of 10\)"):
        attack_success_rate(_BatchMean(), X, Y, TRIGGER)


def test_other_callers_keep_their_words() -> None:
    with pytest.raises(ValueError, match=r"probe samples \[0, 1\] run alone differ from their outputs in the batch of 10 "):
        trigger_effect(_BatchMean(), X, TRIGGER)


def test_a_model_of_independent_samples_is_measured_as_before() -> None:
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.zero_(), model.bias.zero_()
        model.weight[1, 0] = 1.0  # class 1 where x_0 > 0 (others 0): the stamp x_0 := 1 moves every sample
        model.weight[2, 1] = 10.0  # class 2 where 10 x_1 > 1 as well: samples whose x_1 > 0.1 stay out of class 1
    expected = float((X[Y != 1, 1] * 10 <= 1).double().mean())
    assert attack_success_rate(model, X, Y, TRIGGER) == pytest.approx(expected)
