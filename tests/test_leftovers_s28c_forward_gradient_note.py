"""Leftovers of session 28 (item 4): a model that takes gradients in its forward pass with ``create_graph=False``
(forces ``-dE/dx`` detached) is not refused up front by ``method="attribution"`` (its output records no autograd), which
then reaches torch's "appears to not have been used in the graph"; the note added to it listed what works
(``method='exact'``) and named the causal graph as what does not, but not the method the user had asked for."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects

X = torch.tensor([[1.0, 2.0, -1.0], [-1.0, 0.5, 2.0], [0.5, -1.0, 1.0]])


class Forces(nn.Module):
    """``-dE/dx`` of an energy MLP, the gradient taken without its graph (``create_graph=False``)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.energy = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

    def forward(self, x):
        with torch.enable_grad():
            x = x if x.requires_grad else x.detach().requires_grad_(True)
            return -torch.autograd.grad(self.energy(x).sum(), x)[0]


def test_the_note_on_a_cut_graph_names_the_first_order_method_asked_for():
    with pytest.raises(RuntimeError, match=r"not have been used in the graph.*the causal graph and the first-order "
                                           r"method='attribution'/'atp' .* do not: use method='exact'"):
        unit_effects(Forces(), X, "energy.1", method="attribution")  # before: the note ended "the causal graph does not"
    assert unit_effects(Forces(), X, "energy.1", method="exact").shape == (3, 4)  # the way the note names runs
