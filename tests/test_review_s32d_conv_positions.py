"""newuser63's leftover (c), review s32d: UnitImportanceAudit(unit_dim=-1) on a convolution, whose output [N, C, T] holds
its channels in dimension 1, ranked the T positions (time steps) and the bars called them 'neuron', without a word
(the reverse case, unit_dim=1 on features-last states, is refused at set-up). The audit now notes it and the bars say
'position'; its importances are the positions' (hand values); the default unit_dim=1 ranks channels as before."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(2, 3, 1), nn.Flatten(), nn.Linear(3 * 5, 2))


def test_unit_dim_minus_one_on_a_conv_ranks_positions_and_says_so() -> None:
    model, x = _model(), torch.randn(4, 2, 5)
    r = UnitImportanceAudit(["0"], unit_dim=-1, target=0).run(model, Probe(x))
    h, w = model[0](x).detach(), model[2].weight[0].detach().reshape(3, 5)
    hand = (w * h).sum(1).abs().mean(0)  # do(position t := 0) takes the logit's terms of that step, all channels
    assert torch.allclose(r.vectors["importance/0"], hand, atol=1e-5)
    assert r.meta["unit_kind/0"] == "position"
    assert any("nn.Conv1d" in n and "unit_dim=-1 ranks its positions" in n for n in r.meta.get("notes", []))


def test_the_default_ranks_channels_without_a_note() -> None:
    model, x = _model(), torch.randn(4, 2, 5)
    r = UnitImportanceAudit(["0"], target=0).run(model, Probe(x))
    assert r.vectors["importance/0"].shape == (3,) and "unit_kind/0" not in r.meta
    assert not any("Conv1d" in n for n in r.meta.get("notes", []))
