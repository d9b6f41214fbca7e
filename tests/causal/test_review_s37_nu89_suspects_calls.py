"""Review of 61ff2640: ``suspect_units`` builds its do-grid from every call of the layer.

One module used at places of other widths (a ReLU after convolutions of 8 and 16 channels) failed with torch's 'stack
expects each tensor to be equal size', naming nothing (before 61ff2640, a ValueError on the shape of the grid's
value); a layer that never runs failed with an IndexError. Both are refused naming the layer.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.suspects import suspect_units
from lightning_causal.causal.backdoor.triggers import Trigger


class _SharedReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.relu, self.fc = nn.ReLU(), nn.Linear(16, 4)
        self.spare = nn.Linear(16, 16)  # never called

    def forward(self, x):
        return self.fc(self.relu(self.c2(self.relu(self.c1(x)))).mean((2, 3)))


def _setup() -> tuple[nn.Module, torch.Tensor, Trigger]:
    torch.manual_seed(0)
    mask = torch.zeros(1, 8, 8)
    mask[:, 6:, 6:] = 1
    return _SharedReLU().eval(), torch.rand(16, 1, 8, 8), Trigger(mask, 1.0, 0)


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_a_module_used_at_places_of_other_widths_is_refused_naming_them():
    model, x, trigger = _setup()
    with pytest.raises(ValueError, match=r"every call of layer 'relu'.*2 times per forward pass with \[8, 16\] units"):
        suspect_units(model, x, trigger, "relu")
    assert _hooks(model) == 0
    assert suspect_units(model, x, trigger, "c2").score.shape == (16,)  # a layer used once: as before


def test_a_layer_that_never_runs_is_refused_naming_it():
    model, x, trigger = _setup()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # capture's own word that the module did not run
        with pytest.raises(ValueError, match=r"layer 'spare' to run in the model's forward pass but it did not"):
            suspect_units(model, x, trigger, "spare")
    assert _hooks(model) == 0
