"""Lead (session 37), final read of d263f079/7a41ee3e: the warning of counterfactuals moving 0/1 inputs to fractions.

- One input (the usual call, explaining a single spike train) varies at no feature, so the rule "0/1 features half of
  those that vary" never fired: 6 fractional spike values came back without a word. One row holding only 0 and 1 is
  warned of; one grey image (fractions) is not.
- Beside continuous features the advice gave ``torch.ones_like(x[0])`` for every feature with ``bounds=(0, 1)``, which
  would make the continuous features 0/1 too: it now gives the mask of the 0/1 features.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import counterfactual_explanation
from tests.causal.test_trial_newuser86_spiking_state import (
    Timing,  # channel 0's early or late spike decides
)


def test_one_spike_train_moved_to_fractions_is_warned_of():
    x = torch.zeros(1, 6, 2)
    x[0, 1, 0] = 1.0  # class 0: an early spike
    with pytest.warns(UserWarning, match=r"hold only 0 and 1 in every one of the 1 rows"):
        r = counterfactual_explanation(Timing(), x, torch.tensor([1]))
    assert bool(r.success.all()) and not bool(((r.counterfactuals == 0) | (r.counterfactuals == 1)).all())


def test_one_grey_input_is_not_warned_of():
    x = torch.full((1, 6, 2), 0.3)
    x[0, 1, 0] = 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counterfactual_explanation(Timing(), x, torch.tensor([1]))
    assert not [w for w in caught if "hold only 0 and 1" in str(w.message)]


class Mixed(nn.Module):
    """Three continuous columns and eight 0/1 flags; flag 0 decides."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(11, 2)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            self.fc.weight[1, 3], self.fc.weight[0, 3] = 4.0, -4.0
            self.fc.weight[1, 0] = 0.01

    def forward(self, x):
        return self.fc(x)


def test_the_advice_beside_continuous_features_names_the_mask_of_the_0_1_features():
    g = torch.Generator().manual_seed(0)
    flags = (torch.rand(8, 8, generator=g) > 0.5).float()
    flags[:, 0] = torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0])
    x = torch.cat([torch.randn(8, 3, generator=g), flags], 1)
    with pytest.warns(UserWarning, match=r"hold only 0 and 1") as rec:
        counterfactual_explanation(Mixed(), x, 1 - Mixed()(x).argmax(1))
    message = next(str(w.message) for w in rec if "hold only 0 and 1" in str(w.message))
    assert "((x == 0) | (x == 1)).all(0)" in message and "ones_like" not in message
