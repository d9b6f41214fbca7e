"""One reading where there were two (session 44's final review, left): ``tied_steps`` recomputed the tie rule that
``steps_dims`` had just decided (now both come of one reading, ``steps_layout``: the same answers as the two rules as
they were, checked on every module kind and shape below), and ``_positions_second`` took an output both batch first and
transposed where the probe's rows are as many as its steps (``n == T``)."""

import itertools

import torch
from torch import nn

from lightning_causal.causal.engine.padded_reads import _positions_second
from lightning_causal.causal.engine.unit_sites import lays_channels_first
from lightning_causal.causal.structure import layer_activations as la
from tests.causal.test_leftovers_s44b_causal_conv_module import CausalConv, ConvThenLinear
from tests.causal.test_leftovers_s45b_conformer_tie import Conformer


def _as_it_was(module, h, steps, read):
    """Session 44's two rules, as written at 7053f499: (steps on dimension 2, tied)."""
    declared = la._declared_layout(module, h)
    on2 = None
    if declared == "features":
        on2 = False
    elif steps is not None and declared is None:
        fit1, fit2 = (steps <= int(s) <= steps + la.EXTRA_STEPS for s in h.shape[1:3])
        if fit1 != fit2:
            on2 = fit2
        elif fit1 and module is not None and not lays_channels_first(module, h) and la._inner_layout(module, h) == "channels":
            on2 = read == "channels"
    if on2 is None:
        on2 = module is not None and lays_channels_first(module, h) and not la._mixes_positions(module, steps)
    tied = (steps is not None and not on2 and all(steps <= int(s) <= steps + la.EXTRA_STEPS for s in h.shape[1:3])
            and (module is None or (declared is None and not lays_channels_first(module, h)
                                    and la._inner_layout(module, h) != "features" and read != "steps")))
    return on2, tied


def test_one_reading_gives_the_two_rules_answers():
    modules = {"conv": nn.Conv1d(8, 8, 3), "point": nn.Conv1d(8, 8, 1), "relu": nn.ReLU(), "linear": nn.Linear(8, 8),
               "norm": nn.LayerNorm(8), "bn": nn.BatchNorm1d(8), "pool": nn.AvgPool1d(2), "causal": CausalConv(8),
               "block": ConvThenLinear(8), "conformer": Conformer(8)}
    model = nn.ModuleDict(modules)
    shapes = [(2, a, b) for a, b in itertools.product((4, 8, 10, 12, 13), repeat=2)]
    checked = 0
    for (name, module), shape, steps, read in itertools.product(
            [*modules.items(), ("unnamed", None)], shapes, (None, 8), (None, "channels", "steps")):
        h = torch.zeros(shape)
        dims, tied = la.steps_layout(model, {name: h}, steps, {name: read} if read else None)
        assert ((name in dims), (name in tied)) == _as_it_was(module, h, steps, read), (name, shape, steps, read)
        checked += 1
    assert checked == 11 * 25 * 2 * 3


def test_an_output_of_as_many_rows_as_steps_is_read_once():
    out = torch.zeros(3, 3, 5)
    views = _positions_second(out, 3, 3)
    assert len(views) == 1 and views[0] is out  # was 2: out and out.transpose(0, 1)
    assert [tuple(v.shape) for v in _positions_second(torch.zeros(7, 2, 5), 2, 7)] == [(2, 7, 5)]  # time first
