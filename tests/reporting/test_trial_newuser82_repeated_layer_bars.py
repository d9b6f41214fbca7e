"""newuser82 trial (a neural ODE whose function runs 16 times per forward pass): UnitImportanceAudit's bars of such a
layer read "unit_importance: model.f.net.1 ... mean |effect| of do(unit := 0)", as a layer run once would; only the
text card's note said that each unit was set at each of its 16 calls. The bars' title now says so too."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


class _Iterated(nn.Module):
    """A weight-tied block applied three times (fixed-step solver stages alike), and a head run once."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.block, self.head = nn.Sequential(nn.Linear(4, 4), nn.Tanh()), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = x + 0.5 * self.block(x)
        return self.head(x)


def test_the_bars_of_a_layer_run_several_times_say_each_unit_was_set_at_every_call() -> None:
    x = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    result = UnitImportanceAudit(["block.1", "head"]).run(_Iterated().double().eval(), Probe(x))
    figures = TensorBoardRenderer().figures([result])
    repeated = figures["causal/unit_importance/bars/importance/block.1"].axes[0]
    assert repeated.get_title() == "unit_importance: block.1\nset at each call: up to 3 calls a pass on the probe"
    once = figures["causal/unit_importance/bars/importance/head"].axes[0]
    assert once.get_title() == "unit_importance: head"
