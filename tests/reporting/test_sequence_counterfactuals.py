"""Counterfactuals of sequences: an LSTM's input [N, T, F] was drawn as 50 x 4 slivers (time down
the page, each cell 0.1 inch wide), and the difference row sat to the right of the columns above
it (the colour bar took its width from that row only)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.counterfactual import _triptych, split_triptych
from lightning_causal.reporting.figures import counterfactual_figure


class LastStep(nn.Module):
    """Class 1 when feature 0 of the last of T steps is positive: ``[N, T, 2] -> [N, 2]``."""

    def forward(self, x):
        z = 4.0 * x[:, -1, 0]
        return torch.stack([-z, z], 1)


def test_a_features_last_sequence_is_drawn_with_time_across():
    x = torch.randn(6, 20, 2, generator=torch.Generator().manual_seed(0))
    y = (x[:, -1, 0] <= 0).long()  # every sample misclassified
    r = CounterfactualAudit(max_samples=2).run(LastStep(), Probe(x, y))
    assert r.images["counterfactuals"].shape == (2, 1, 2, 3 * 20 + 2)  # [M, 1, F, 3T + 2]
    assert r.scalars["success_rate"] == 1.0


def test_counterfactual_columns_align_and_a_signal_is_not_a_sliver():
    g = torch.Generator().manual_seed(0)
    for x in (torch.randn(3, 4, 50, generator=g), torch.rand(3, 1, 8, 8, generator=g)):
        cf = x + 0.5 * (torch.rand(x.shape, generator=g) > 0.9)
        fig = counterfactual_figure(split_triptych(_triptych(x, cf)), ["label 1 → pred 0\n→ cf 1 ✓"] * 3)
        fig.canvas.draw()
        rows = [[fig.axes[3 * r + c].get_position() for c in range(3)] for r in range(3)]
        for c in range(3):
            assert rows[2][c].x0 == rows[0][c].x0 and rows[2][c].width == rows[0][c].width
        assert min(p.height for row in rows for p in row) * fig.get_figheight() >= 0.5  # inches
