"""The row engines leave unrun a row whose intervention changes no bit (``ablation.differs``): ``-0.0`` and ``0.0``
were told apart for real floats but not in the parts of a complex value, so ``complex(-1, -0.0)`` set to the
baseline ``complex(-1, 0.0)`` counted as unchanged, its effect 0 and the warning that every group equals its baseline,
where ``angle()`` moves from -π to π."""

import math

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.ablation import changed_groups, differs


def test_differs_tells_the_sign_of_each_part_of_a_complex_zero():
    x = torch.tensor([complex(-1, -0.0), complex(-1, 0.0), complex(-0.0, 2), complex(0.0, 2), complex(1, 2)])
    assert differs(x, torch.tensor(complex(-1, 0.0))).tolist() == [True, False, True, True, True]
    assert differs(x, torch.tensor(complex(0.0, 2))).tolist() == [True, True, True, False, True]
    assert differs(x.conj(), torch.tensor(complex(-1, 0.0))).tolist() == [False, True, True, True, True]  # conj flips
    assert differs(x[:2], torch.tensor(-1.0)).tolist() == [True, False]  # a real value: imaginary part +0.0
    masks = (torch.tensor([[0, 1]]),)
    assert changed_groups((x[:2].view(1, 2),), masks, (torch.tensor([[complex(-1, 0.0)]]),), 2).tolist() == [[True, False]]


class _Angle(nn.Module):
    def forward(self, z):
        return z.angle()


def test_input_effects_run_a_complex_negative_zero_set_to_the_baseline_zero():
    """angle(-1 - 0j) = -π, angle(-1 + 0j) = π: the effect (clean minus intervened) is -2π; before, 0 with a warning."""
    z = torch.tensor([[complex(-1, -0.0), complex(2, 0.0)]])
    b = torch.tensor([complex(-1, 0.0), complex(2, 0.0)])
    mask = torch.tensor([[0, 1]])
    assert input_effects(_Angle(), z, mask, baseline=b, target=0)[0].tolist() == pytest.approx([-2 * math.pi, 0.0])
    assert input_effects(_Angle(), z, mask, baseline=b, target=1)[0].tolist() == [0.0, 0.0]


class _ToComplex(nn.Module):
    def forward(self, x):
        return torch.complex(x[:, 0], x[:, 1])  # [N, 2] complex units


class _ImagAtan2(nn.Module):
    def forward(self, z):
        return torch.atan2(z.imag, -torch.ones_like(z.imag))  # a unit at 0 - 0j reads -π, at 0 + 0j π


def test_unit_effects_zero_a_complex_unit_at_negative_zero():
    """Zero() sets 0 + 0j; a unit at 0 - 0j differs in the sign of its imaginary part, and its row runs."""
    model = nn.Sequential(_ToComplex(), _ImagAtan2()).eval()
    x = torch.tensor([[[0.0, 3.0], [-0.0, 0.0]]])  # units 0 - 0j and 3 + 0j
    effects = unit_effects(model, x, "0", target=0)
    assert effects[0].tolist() == pytest.approx([-2 * math.pi, 0.0])
