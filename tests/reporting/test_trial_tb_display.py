"""What a TensorBoard user sees for inputs that are not 8x8 digits (trial "tb": 32x32 RGB, 28x28
grey, 1-D signals [N, 1, 200], 30 named columns, 64 tokens)."""

from __future__ import annotations

import torch

from lightning_causal.reporting.figure_kinds import MapData, map_figures


def test_a_signals_unsigned_map_is_drawn_from_zero_and_a_signed_one_symmetric():
    """One channel [N, 1, T]: each map's bars were drawn on a symmetric axis, so Saliency (|gradient|)
    and a total Sobol' index spent half their panel on negative values that cannot occur, with
    negative ticks; the heatmaps of several channels already start such maps at 0."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 200, generator=g)
    causal = torch.randn(2, 1, 200, generator=g)
    saliency = causal.abs() * 0.5
    [(_, fig)] = map_figures(MapData(x, {"causal": causal, "Saliency": saliency}, "cb", {"targets": [0, 0]}, None, 1))
    signed, unsigned = fig.axes[2], fig.axes[3]  # each panel: the input's axis, then its map's twin
    assert signed.get_ylabel() == "causal" and unsigned.get_ylabel() == "Saliency"
    peak = float(causal[:1].abs().max())
    assert signed.get_ylim() == (-peak, peak)
    assert unsigned.get_ylim() == (0.0, float(saliency[:1].max()))
    assert min(p.get_height() for p in unsigned.patches) >= 0.0
