"""newuser68's trial: the effect of windows of a second of 16 kHz audio, ``[N, 1, 16000]``, drawn on the waveform.

The waveform was one black line 1.1 points wide: 16,000 samples in some 430 pixels are a solid black block, and the
effect's bars, drawn over it at 0.45 alpha, were black too wherever the signal was loud, the window that decides the
class among them. A line of more than ``MAX_BARS`` steps is now light grey and thin; shorter ones stay black.
"""

from __future__ import annotations

import torch
from matplotlib.colors import to_rgb

from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.figure_style import MAX_BARS
from lightning_causal.reporting.map_data import MapData


def _line(steps: int):
    g = torch.Generator().manual_seed(0)
    effect = torch.zeros(1, 1, steps)
    effect[..., steps // 2: steps // 2 + steps // 10] = 1.0
    (_, fig), = map_figures(MapData(torch.randn(1, 1, steps, generator=g), {"causal": effect}, "a"), None)
    (line,) = fig.axes[0].get_lines()
    return to_rgb(line.get_color()), line.get_linewidth()


def test_a_dense_waveform_is_a_light_thin_line_under_its_effect():
    colour, width = _line(16000)
    assert min(colour) >= 0.5 and width <= 0.6  # light: the red and blue bars over it stay red and blue


def test_a_signal_of_up_to_max_bars_steps_stays_a_black_line():
    assert _line(MAX_BARS) == ((0.0, 0.0, 0.0), 1.1)
