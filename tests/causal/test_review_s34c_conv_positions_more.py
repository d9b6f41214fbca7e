"""The convolution update for units along positions (1f8e77ec, ``conv_update.add_position_change``) on the cases its
own tests did not reach (review_s34c): a ``Conv2d`` with stride, dilation and padding that differ per dimension, read
along its rows (``unit_dim=2``) as well as its columns; ``'same'`` padding with odd and even kernels under dilation; a
depthwise ``Conv1d`` (``groups == channels``); a ``Conv3d`` along its depth and its width; every unit from one edge to
the other. The effects equal full forward passes in float64 with the update taken; an input changed in place or
replaced by a forward pre-hook before the convolution reads it runs the layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.conv_update import add_position_change
from tests.causal.test_conv_update import TRIAL, _case, _effects

ANSWERED = {
    "2-D rows, per-dimension stride/padding/dilation": (
        lambda: nn.Conv2d(32, 16, (5, 3), stride=(1, 2), padding=(4, 1), dilation=(2, 1)), (80, 6), 2),
    "2-D columns, per-dimension stride/padding/dilation": (
        lambda: nn.Conv2d(32, 16, (3, 5), stride=(2, 1), padding=(1, 4), dilation=(1, 2)), (6, 80), -1),
    "same, odd kernel, dilated": (lambda: nn.Conv1d(32, 32, 5, padding="same", dilation=2), (80,), -1),
    "depthwise": (lambda: nn.Conv1d(32, 32, 5, padding=2, groups=32), (512,), -1),
    "3-D width": (lambda: nn.Conv3d(16, 8, 3, padding=1, stride=(1, 1, 2)), (3, 4, 32), -1),
    "3-D depth": (lambda: nn.Conv3d(16, 8, 3, padding=(2, 1, 1), dilation=(2, 1, 1)), (48, 3, 4), 2),
}


@pytest.mark.parametrize("name", list(ANSWERED))
def test_position_units_of_more_layouts_equal_the_full_passes_and_take_the_update(name, updates):
    make, spatial, unit_dim = ANSWERED[name]
    conv = make()
    model, x = _case(conv, channels=conv.in_channels, spatial=spatial, n=2)
    info = _effects(model, x, unit_dim=unit_dim)
    assert info.linear_updates == ("'reader'",)
    length = spatial[unit_dim - 2 if unit_dim >= 0 else unit_dim]
    assert updates["rows"] == 2 * length + TRIAL  # every position of both samples, and the trial's rows


@pytest.mark.parametrize("how", ["in place before the read", "a pre-hook's new input", "a pre-hook in place"])
def test_a_changed_input_of_the_convolution_runs_it(how, updates):
    model, x = _case(nn.Conv1d(32, 32, 3, padding=1), channels=32, spatial=(64,), n=2,
                     inplace=how == "in place before the read")
    if how == "a pre-hook's new input":
        model.reader.register_forward_pre_hook(lambda _m, args: (2.0 * args[0],))
    elif how == "a pre-hook in place":
        def doubled(_m, args):
            args[0].mul_(2.0)

        model.reader.register_forward_pre_hook(doubled)
    info = _effects(model, x, unit_dim=-1)
    assert info.linear_updates == () and updates["rows"] == 0


@pytest.mark.parametrize("conv, spatial, dim, unit", [
    (nn.Conv2d(6, 5, (3, 4), stride=(2, 3), padding=(1, 2), dilation=(2, 3)), (11, 23), 3, 1),
    (nn.Conv2d(6, 5, (3, 4), stride=(2, 3), padding=(1, 2), dilation=(2, 3)), (23, 11), 2, 1),
    (nn.Conv2d(6, 5, (4, 3), stride=(3, 1), padding=(0, 2), dilation=(2, 1)), (24, 9), 2, 3),
    (nn.Conv1d(4, 6, 5, padding="same", dilation=3), (20,), 2, 1),
    (nn.Conv1d(4, 6, 6, padding="same", dilation=3), (21,), 2, 1),
    (nn.Conv2d(4, 6, (4, 2), padding="same", dilation=(2, 3)), (7, 20), 3, 1),
    (nn.Conv1d(8, 16, 5, padding=3, groups=8, stride=2, dilation=2), (21,), 2, 1),
    (nn.Conv1d(4, 6, 9, padding=4), (6,), 2, 1),  # the kernel longer than the input
    (nn.Conv3d(4, 3, (3, 2, 3), stride=(2, 1, 1), padding=(2, 0, 1), dilation=(2, 1, 1)), (13, 4, 5), 2, 1),
    (nn.Conv3d(4, 3, (2, 4, 2), padding="same", dilation=(1, 2, 3)), (3, 4, 14), 4, 1),
], ids=["2-D columns", "2-D rows", "2-D rows, units of 3", "same odd", "same even", "2-D same even", "depthwise x2",
        "kernel over the input", "3-D depth", "3-D same even"])
def test_the_change_of_every_position_equals_the_convolution(conv, spatial, dim, unit):
    torch.manual_seed(0)
    conv = conv.double()
    value = torch.randn(3, conv.in_channels, *spatial, dtype=torch.float64)
    units = torch.arange(spatial[dim - 2] // unit)  # every unit, both edges and the middle
    rows = units % 3
    positions = units[:, None] * unit + torch.arange(unit)
    h = value[rows].clone()
    moved = h.movedim(dim, -1)  # a view: the change is written into h
    at = torch.arange(len(units))[:, None]
    moved[at, ..., positions] = torch.randn(moved[at, ..., positions].shape, dtype=torch.float64)
    with torch.no_grad():
        out = conv(value)[rows].contiguous()
        add_position_change(conv, out, h, value, rows, positions, dim)
        torch.testing.assert_close(out, conv(h), rtol=0, atol=1e-12)
