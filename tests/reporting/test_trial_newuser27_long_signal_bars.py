"""Effect maps of long 1-D signals (trial newuser27: a Conv1d on waveforms [N, 1, 2000]). Each step's effect was
one matplotlib bar, about a millisecond each: 3 s to build one figure of 2,000 steps, so drawing an audit epoch
(4 samples of InputEffectAudit and of CaptumBaseline's causal map and 3 methods) took 83 s against 4.5 s of
audits. Past ``MAX_BARS`` steps the same bars are one filled step outline per sign (two artists)."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from lightning_causal.reporting.counterfactual_figures import _signal_cell
from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.figure_style import MAX_BARS, NEG, POS, step_bars
from lightning_causal.reporting.map_data import MapData


def _effect():
    effect = torch.zeros(2000)
    effect[800:900], effect[900:1000] = 0.5, -0.25  # a window raising the class, the next lowering it
    return effect


def _outlines(ax):
    """Each step outline's (values, edges) by colour."""
    from matplotlib.colors import to_hex

    return {to_hex(p.get_facecolor()): p.get_data() for p in ax.patches}


def test_a_long_signals_effect_is_two_outlines_holding_every_steps_value():
    (_, fig), = map_figures(MapData(torch.randn(1, 1, 2000), {"causal": _effect().view(1, 1, 2000)}, "a"), None)
    twin = fig.axes[1]
    assert len(twin.patches) == 2  # not 2,000 bars
    drawn = _outlines(twin)
    red, blue = drawn["#d62728"], drawn["#1f77b4"]  # tab:red (>= 0), tab:blue (< 0)
    assert torch.equal(torch.as_tensor(red.values + blue.values, dtype=torch.float32), _effect())
    assert red.edges[0] == -0.5 and red.edges[-1] == 1999.5 and red.baseline == 0.0


def test_up_to_max_bars_a_bar_per_step_and_the_counterfactual_difference_likewise():
    ax = Figure().subplots()
    step_bars(ax, [1.0, -2.0] * (MAX_BARS // 2), (POS, NEG))
    assert [p.get_height() for p in ax.patches] == [1.0, -2.0] * (MAX_BARS // 2)
    import matplotlib

    ax = Figure().subplots()
    _signal_cell(ax, "difference", _effect(), torch.zeros(2000), matplotlib.colormaps["RdBu_r"])
    assert len(ax.patches) == 2 and sum(p.get_data().values.sum() for p in ax.patches) == float(_effect().sum())
