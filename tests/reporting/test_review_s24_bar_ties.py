"""Review of the change (git diff 8e7989a): the unit-importance bars (``chart_figures.bar_figure``) took their order
from ``topk``, which leaves equal magnitudes in no set order (units 2, 4, 3, 0, 1 for five of equal |value|); 096f410
had given the top-features bars a stable descending order. Both use ``figure_style.largest_first`` now."""

from __future__ import annotations

import torch

from lightning_causal.reporting.chart_figures import bar_figure


def _labels(values: torch.Tensor, top: int) -> list[str]:
    return [t.get_text() for t in bar_figure(values, "layer", top=top).axes[0].get_xticklabels()]


def test_bars_of_equal_magnitude_are_drawn_in_index_order():
    assert _labels(torch.tensor([0.5, -0.5, 0.5, -0.5, 0.5]), 5) == ["0", "1", "2", "3", "4"]  # topk: 2, 4, 3, 0, 1
    assert _labels(torch.zeros(6), 4) == ["0", "1", "2", "3"]  # a layer of no effect: its first units
    # distinct magnitudes largest first as before, the tie (units 1, 2, 3 at 2.0) in index order between them
    assert _labels(torch.tensor([1.0, -2.0, 2.0, 2.0, 0.5, 3.0]), 5) == ["5", "1", "2", "3", "0"]
