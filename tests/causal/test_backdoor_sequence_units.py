"""CARE suspect units and the backdoor term's unit path on ``[N, T, D]`` hidden states: with
``unit_dim=-1`` (neurons) or ``num_heads`` (heads) they must give exactly what the same network
gives when its layer returns the units first (dimension 1, the default)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.suspects import suspect_units
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm

T, F, D, H, C = 5, 3, 6, 2, 3


class _UnitsFirst(nn.Module):
    """``[N, T, D]`` -> ``[N, D, T]`` (neurons) or ``[N, H, T, D/H]`` (heads)."""

    def __init__(self, heads: int | None) -> None:
        super().__init__()
        self.heads = heads

    def forward(self, h):
        if self.heads is None:
            return h.transpose(1, 2)
        return h.view(h.shape[0], T, self.heads, D // self.heads).permute(0, 2, 1, 3)


class SeqNet(nn.Module):
    """Token features ``[N, T, F]`` -> Linear + tanh per position ``[N, T, D]`` -> mean over
    positions -> logits; ``units_first`` makes ``hidden`` return its units on dimension 1."""

    def __init__(self, units_first: str | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        layers = [nn.Linear(F, D), nn.Tanh()]
        self.mode = units_first
        if units_first is not None:
            layers.append(_UnitsFirst(H if units_first == "heads" else None))
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(D, C)

    def forward(self, x):
        h = self.hidden(x)
        if self.mode == "neurons":
            h = h.transpose(1, 2)
        elif self.mode == "heads":
            h = h.permute(0, 2, 1, 3).reshape(x.shape[0], T, D)
        return self.head(h.mean(1))


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, T, F, generator=g, dtype=torch.float64)
    mask = torch.zeros(T, F, dtype=torch.float64)
    mask[1, 0] = 1.0
    return x, Trigger(mask, 3.0 * mask, target=2)


@pytest.mark.parametrize(("mode", "layout"), [("neurons", {"unit_dim": -1}), ("heads", {"num_heads": H})])
def test_suspect_units_on_sequence_layers_equal_the_units_first_network(mode, layout):
    x, trigger = _data()
    seq, twin = SeqNet().double(), SeqNet(mode).double()
    ours = suspect_units(seq, x, trigger, "hidden", **layout)
    reference = suspect_units(twin, x, trigger, "hidden")
    assert ours.score.shape == (D if mode == "neurons" else H,)
    torch.testing.assert_close(ours.score, reference.score, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.effect_clean, reference.effect_clean, rtol=1e-10, atol=1e-12)
    assert ours.flagged == reference.flagged and float(ours.score.abs().max()) > 0


def test_suspect_units_refuse_positions_as_units_by_default():
    x, trigger = _data()
    with pytest.raises(ValueError, match="unit_dim"):
        suspect_units(SeqNet().double(), x, trigger, "hidden")


@pytest.mark.parametrize(("mode", "layout"), [("neurons", {"unit_dim": -1}), ("heads", {"num_heads": H})])
def test_backdoor_term_unit_path_on_sequence_layers_equals_the_units_first_network(mode, layout):
    x, trigger = _data()
    y = torch.zeros(12, dtype=torch.long)
    parts = {"unlearn_weight": 0.0, "distill_weight": 0.0, "path": "units", "augment": None}
    losses = []
    for model, opts in ((SeqNet().double(), layout), (SeqNet(mode).double(), {})):
        term = BackdoorSuppressionTerm(trigger, suspects=["hidden"], **parts, **opts)
        term.setup(model, x)
        losses.append((term.suspects, term.loss(model, x, y)))
    (found, ours), (found_ref, reference) = losses
    assert found == found_ref and len(found["hidden"]) >= 1
    assert float(ours.detach()) > 0
    torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-12)
    by_layer = BackdoorSuppressionTerm(trigger, suspects={"hidden": [1]}, **parts,
                                       **{k: {"hidden": v} for k, v in layout.items()})
    torch.testing.assert_close(by_layer.loss(SeqNet().double(), x, y),
                               BackdoorSuppressionTerm(trigger, suspects={"hidden": [1]}, **parts).loss(SeqNet(mode).double(), x, y))


def test_backdoor_audit_ranks_sequence_neurons_like_suspect_units():
    from lightning_causal.audits import BackdoorAudit, Probe

    x, trigger = _data()
    model = SeqNet().double()
    r = BackdoorAudit(trigger, layers=["hidden"], unit_dim={"hidden": -1}).run(model, Probe(x, torch.zeros(12, dtype=torch.long)))
    torch.testing.assert_close(r.vectors["suspect_score/hidden"], suspect_units(model, x, trigger, "hidden", unit_dim=-1).score)
    with pytest.raises(ValueError, match="unit_dim"):
        BackdoorAudit(trigger, layers=["hidden"], unit_dim={"other": -1})
