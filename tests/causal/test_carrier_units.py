"""CARE carrier units of ``[N, T, D]`` layers: with ``unit_dim=-1`` (neurons) or ``num_heads``
(heads) the carriers equal those of the same network whose layer returns its units first; the
default (positions) is refused; a module's input is a site too."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal.scm.fairness import carrier_unit_effects
from tests.causal.test_backdoor_sequence_units import H, SeqNet


def _flip(x):
    return x.flip(-1)  # the counterfactual: every position's features reversed


def _x():
    return torch.rand(10, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))


@pytest.mark.parametrize(("mode", "layout"), [("neurons", {"unit_dim": -1}), ("heads", {"num_heads": H})])
def test_carriers_of_sequence_layers_equal_the_units_first_network(mode, layout):
    x = _x()
    got = carrier_unit_effects(SeqNet().double(), x, _flip, "hidden", target=1, **layout)
    want = carrier_unit_effects(SeqNet(mode).double(), x, _flip, "hidden", target=1)
    assert got.shape == want.shape and got.abs().max() > 0
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_carriers_refuse_positions_by_default_and_read_a_module_input():
    x = _x()
    with pytest.raises(ValueError, match="unit_dim=-1"):
        carrier_unit_effects(SeqNet().double(), x, _flip, "hidden", target=1)
    model = SeqNet().double()
    torch.testing.assert_close(carrier_unit_effects(model, x, _flip, "hidden.1:input", target=1, unit_dim=-1),
                               carrier_unit_effects(model, x, _flip, "hidden.0", target=1, unit_dim=-1), rtol=0, atol=0)
    r = FairnessAudit(_flip, layers=["hidden"], unit_dim={"hidden": -1}).run(model, Probe(x))
    torch.testing.assert_close(r.vectors["carriers/hidden"],
                               carrier_unit_effects(model, x, _flip, "hidden", unit_dim=-1).abs().mean(0))
