"""steps_layout pinned to hand-read answers where the sizes tie (``C == T``, so the module decides): the wrappers
steps_dims / tied_steps are gone (nothing in the package called them) and ``_declared_layout`` asks
``unit_sites._features_last`` for its one key instead of building ``declared_widths``' dict; these answers are the
ones read off each layer by hand, not by the rules under test."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure.layer_activations import steps_layout

T = 8


class _Block(nn.Module):
    """A block of one's own holding a Conv1d of T channels and nothing that gives its features last."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(T, T, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


@pytest.mark.parametrize("module, answer", [
    (nn.Linear(T, T), ({}, [])),  # features last: [N, T, D], declared, no tie
    (nn.LayerNorm(T), ({}, [])),  # a norm of the last dimension: features last
    (nn.Conv1d(T, T, 3, padding=1), ({"m": 2}, [])),  # a convolution: [N, C, T]
    (nn.BatchNorm1d(T), ({"m": 2}, [])),  # a channel normalisation: [N, C, T]
    (nn.Conv1d(T, T, 1), ({}, [])),  # a pointwise Conv1d of T input channels mixes positions laid on its channels
    (nn.ReLU(), ({}, ["m"])),  # says nothing: dimension 1, a tie nothing decided
    (_Block(), ({}, ["m"])),  # a convolution inside, no record of how it read its input: dimension 1, warned
])
def test_where_the_steps_lie_when_both_dimensions_hold_t(module, answer):
    model = nn.ModuleDict({"m": module})
    assert steps_layout(model, {"m": torch.ones(2, T, T)}, T) == answer


def test_a_block_whose_convolution_read_its_input_as_it_is_lays_its_steps_on_dimension_2():
    model = nn.ModuleDict({"m": _Block()})
    assert steps_layout(model, {"m": torch.ones(2, T, T)}, T, {"m": "channels"}) == ({"m": 2}, [])
    assert steps_layout(model, {"m": torch.ones(2, T, T)}, T, {"m": "steps"}) == ({}, [])


def test_the_shape_decides_where_only_one_dimension_holds_t_unless_the_module_gives_its_features_last():
    relu = nn.ModuleDict({"m": nn.ReLU()})
    assert steps_layout(relu, {"m": torch.ones(2, 16, T)}, T) == ({"m": 2}, [])  # [N, C, T]
    assert steps_layout(relu, {"m": torch.ones(2, T, 16)}, T) == ({}, [])  # [N, T, D]
    assert steps_layout(relu, {"m": torch.ones(2, T + 2, 16)}, T) == ({}, [])  # two steps more ([CLS], a causal pad)
    linear = nn.ModuleDict({"m": nn.Linear(3, T)})  # after a strided convolution: [N, T / 2, D], D == T by chance
    assert steps_layout(linear, {"m": torch.ones(2, T // 2, T)}, T) == ({}, [])
