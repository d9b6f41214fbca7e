"""newuser46's trial: unit-importance bars of a layer with more units than the card draws (Whisper's conv1, 32 filters)."""

from __future__ import annotations

import torch

from lightning_causal.reporting.chart_figures import bar_figure


def test_unit_bars_that_leave_units_out_say_how_many_of_how_many():
    # Whisper's encoder.conv1 has 32 filters: its card drew the 16 largest under the axis label "unit" alone, read as a
    # layer of 16 filters
    fig = bar_figure(torch.arange(32.0), "filters: encoder.conv1", value_label="mean |effect| of do(unit)")
    assert fig.axes[0].get_xlabel() == "unit (the 16 largest of 32)" and len(fig.axes[0].patches) == 16
    assert bar_figure(torch.arange(4.0), "heads", item_label="head").axes[0].get_xlabel() == "head"  # all drawn: as before
