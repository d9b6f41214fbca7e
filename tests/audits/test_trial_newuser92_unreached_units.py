"""newuser92 trial: a multi-exit network leaves most samples at an early exit in eval mode, so the units of a later
block change nothing for them. UnitImportanceAudit averaged those samples' zero effects into each importance in
silence: on digits 101 of 128 probe samples left before the last block, whose top unit read 0.18 where it is 0.87 over
the 27 samples that reach it (/tmp/newuser92/exp11.py). The audit now says how many probe samples no unit of a layer
changes (``meta["unreached/<layer>"]``) and, first in its note (the text card cuts long notes), the top unit's
importance over the others; the layer's bars in TensorBoard say how many samples count 0."""

from __future__ import annotations

import re

import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import Zero, intervene


class EarlyExit(nn.Module):
    """Two blocks, a head after each; eval: a row leaves at head 0 where its confidence reaches 0.7 (per row)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.block0, self.head0 = nn.Sequential(nn.Linear(3, 5), nn.Tanh()), nn.Linear(5, 2)
        self.block1, self.head1 = nn.Sequential(nn.Linear(5, 5), nn.Tanh()), nn.Linear(5, 2)

    def forward(self, x):
        h = self.block0(x)
        first = self.head0(h)
        last = self.head1(self.block1(h))
        return torch.where(first.softmax(1).amax(1, keepdim=True) >= 0.7, first, last)


X = 3 * torch.randn(40, 3, generator=torch.Generator().manual_seed(2))


def _hand_effects(model: nn.Module, layer: str) -> torch.Tensor:
    with torch.no_grad():
        out = model(X)
        t = out.argmax(1, keepdim=True)
        effects = []
        for u in range(5):
            with intervene(model, {layer: Zero(units=[u])}):
                effects.append((out.gather(1, t) - model(X).gather(1, t))[:, 0])
    return torch.stack(effects, 1)


def test_the_audit_says_how_many_samples_leave_before_the_layer():
    model = EarlyExit().eval()
    with torch.no_grad():
        early = int((model.head0(model.block0(X)).softmax(1).amax(1) >= 0.7).sum())
    assert 0 < early < 40  # the premise: some rows leave at the first exit, some reach the second
    result = UnitImportanceAudit(["block1.0", "block0.0"]).run(model, Probe(X))
    assert result.meta["unreached/block1.0"] == early
    assert "unreached/block0.0" not in result.meta  # every sample's output reads the first block
    hand = _hand_effects(model, "block1.0")
    assert int((hand == 0).all(1).sum()) == early
    torch.testing.assert_close(result.vectors["importance/block1.0"], hand.abs().mean(0))  # the means are unchanged
    note = next(n for n in result.meta["notes"] if n.startswith("block1.0: its top unit's importance is"))
    assert f"over the {40 - early} probe samples it changes" in note and f"changes the other {early} (an exit" in note
    reached = float(hand[(hand != 0).any(1)].abs().mean(0).max())
    shown = float(re.search(r"importance is ([\d.e-]+) over", note).group(1))
    assert abs(shown - reached) <= 1e-3 * reached


def test_the_bars_title_says_how_many_samples_count_0():
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    model = EarlyExit().eval()
    result = UnitImportanceAudit(["block1.0", "block0.0"]).run(model, Probe(X))
    figures = TensorBoardRenderer().figures([result])
    late = figures["causal/unit_importance/bars/importance/block1.0"].axes[0].get_title()
    first = figures["causal/unit_importance/bars/importance/block0.0"].axes[0].get_title()
    assert f"0 for the {result.meta['unreached/block1.0']} samples it does not reach" in late
    assert "does not reach" not in first
