"""The convolution update for units along positions (leftovers_s34c): a layer whose units are a sequence's steps
(``unit_dim=-1`` of a ``Conv1d``'s input ``[N, C, L]``, or the columns of a ``Conv2d``'s) changes, in a row, one
position of every channel; the convolution reading it is answered by its probe output plus the change's convolution
over the output positions the changed positions reach only (``conv_update.add_position_change``: stride, zero
padding, ``'same'`` with even kernels, dilation, groups). The effects and graphs equal full forward passes in float64;
the update is refused where it does not pay (a reach over an eighth of the output, a row's product too small) or
cannot hold (reflect/replicate/circular padding copy a changed edge into the padding)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.conv_update import (
    POSITION_MIN_WORK,
    add_position_change,
    conv_share,
)
from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import causal_graph
from tests.causal.test_conv_update import TRIAL, _case, _effects
from tests.causal.test_graph_linear_s32_sweep import (  # noqa: F401
    _assert_same_graph,
    _ProductRows,
    _reference,
    full_passes,
)

ANSWERED = {
    "plain": (lambda: nn.Conv1d(32, 16, 3, padding=1), (64,)),
    "stride 2, padding 2, dilation 2": (lambda: nn.Conv1d(32, 32, 5, stride=2, padding=2, dilation=2), (96,)),
    "no padding, stride 3": (lambda: nn.Conv1d(32, 32, 4, stride=3), (100,)),
    "same, even kernel, dilated": (lambda: nn.Conv1d(32, 16, 4, padding="same", dilation=3), (80,)),
    "two groups": (lambda: nn.Conv1d(32, 16, 3, padding=1, groups=2), (128,)),
    "2-D, the columns": (lambda: nn.Conv2d(32, 8, 3, stride=(1, 2), padding=(1, 2)), (3, 64)),
}


@pytest.mark.parametrize("traced", [True, False], ids=["fx", "hooks"])
@pytest.mark.parametrize("name", list(ANSWERED))
def test_position_units_equal_the_full_passes_and_take_the_update(name, traced, updates):
    make, spatial = ANSWERED[name]
    model, x = _case(make(), channels=32, spatial=spatial, traced=traced, n=3)
    info = _effects(model, x, unit_dim=-1)
    assert info.linear_updates == ("'reader'",)
    assert updates["rows"] == 3 * spatial[-1] + TRIAL  # every position of every sample, and the trial's rows


def test_heads_of_positions_take_the_update(updates):
    model, x = _case(nn.Conv1d(32, 16, 3, padding=1), channels=32, spatial=(96,), n=3)
    info = _effects(model, x, unit_dim=-1, num_heads=24)  # units of 4 steps
    assert info.linear_updates == ("'reader'",) and updates["rows"] == 3 * 24 + TRIAL


REFUSED = {
    "reflect padding": (lambda: nn.Conv1d(32, 16, 3, padding=1, padding_mode="reflect"), (64,)),
    "circular padding": (lambda: nn.Conv1d(32, 16, 3, padding=1, padding_mode="circular"), (64,)),
    "a reach over an eighth of the output": (lambda: nn.Conv1d(32, 16, 5, padding=2), (24,)),
    "a row's product too small": (lambda: nn.Conv1d(32, 2, 3, padding=1), (64,)),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_positions_the_update_cannot_answer_or_that_do_not_pay_run_the_layer(name, updates):
    make, spatial = REFUSED[name]
    model, x = _case(make(), channels=32, spatial=spatial, n=3)
    info = _effects(model, x, unit_dim=-1)
    assert info.linear_updates == () and updates["rows"] == 0


def test_the_rule_weighs_the_reach_against_the_output_and_the_work_spared():
    conv = nn.Conv1d(32, 16, 3, padding=1)
    assert conv_share(conv, -1, 1, 3, (1, 16, 64)) == 3 / 64
    assert conv_share(conv, 2, 4, 3, (1, 16, 64)) == 6 / 64  # a unit of 4 steps reaches 6 outputs
    assert conv_share(nn.Conv1d(32, 16, 7, stride=2, dilation=2, padding=6), -1, 1, 3, (1, 16, 64)) == 7 / 64
    assert conv_share(nn.Conv1d(32, 2, 3, padding=1), -1, 1, 3, (1, 2, 64)) is None  # 12,288 - 576 < POSITION_MIN_WORK
    assert 32 * 3 * 2 * 64 < POSITION_MIN_WORK
    assert conv_share(conv, 0, 1, 3, (1, 16, 64)) is None  # the samples
    assert conv_share(conv, -1, 1, 4, (1, 16, 8, 64)) is None  # a Conv1d on a 4-D input


@pytest.mark.parametrize("stride, padding, dilation, kernel, unit", [
    (1, 1, 1, 3, 1), (2, 3, 2, 5, 2), (3, 0, 1, 4, 1), (1, "same", 3, 4, 3), (2, 0, 1, 1, 1)])
def test_the_change_of_every_position_to_the_edges_equals_the_convolution(stride, padding, dilation, kernel, unit):
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 6, kernel, stride=stride, padding=padding, dilation=dilation, groups=2).double()
    value = torch.randn(3, 4, 21, dtype=torch.float64)
    units = torch.arange(21 // unit)  # every unit, the first and last included
    rows = units % 3
    positions = units[:, None] * unit + torch.arange(unit)
    h = value[rows].clone()
    h[torch.arange(len(units))[:, None], :, positions] = torch.randn(len(units), unit, 4, dtype=torch.float64)
    with torch.no_grad():
        out = conv(value)[rows].contiguous()
        add_position_change(conv, out, h, value, rows, positions, 2)
        torch.testing.assert_close(out, conv(h), rtol=0, atol=1e-12)


def test_the_graph_over_sequence_steps_equals_full_passes_without_the_convolution_per_row(monkeypatch, updates,
                                                                                        full_passes):  # noqa: F811
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 32, 3, padding=1), nn.Tanh(), nn.Conv1d(32, 16, 3, padding=1), nn.Tanh(),
                          nn.Flatten(), nn.Linear(16 * 48, 3)).double().eval()
    x = torch.randn(16, 2, 48, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    kw = {"top_k": 4, "alpha": 0.5, "unit_dim": {"1": -1, "3": -1}}
    reference = _reference(full_passes, model, x, ["1", "3"], **kw)
    monkeypatch.setattr(graph_context, "CONV_CACHE_MIN_WORK", 0)  # spared 69,120 a row: the rule keeps the plain suffix
    product = _ProductRows(model[2], monkeypatch)
    graph = causal_graph(model, x, ["1", "3"], **kw)
    _assert_same_graph(graph, reference)
    assert updates["rows"] >= 16 * 48 + TRIAL  # the sweep of '1': every step of every sample
    assert product.rows < 16 * 48  # the convolution's own product: the clean, trial and faithfulness passes only
