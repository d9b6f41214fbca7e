"""The depth slice a volume's map is drawn at (trial newuser27: a Conv3d of 16^3 volumes, octant groups, a blob planted
at depths 2-5 of octant 3). Every slice of an octant holds the same effect, so the "largest mean |effect|" slice was
a tie over depths 0-7 and argmax drew the first, the volume's edge slice: the input panel showed noise, not the
blob the effect is about. Of a run of equal slices the middle one is drawn, and the title says so."""

from __future__ import annotations

import torch

from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.map_data import MapData


def _title(fig):
    return " ".join(fig._suptitle.get_text().split())  # wrapped to the figure's width


def _drawn_input(fig):
    return torch.as_tensor(fig.axes[0].get_images()[0].get_array().data)


def test_groups_spanning_several_slices_are_drawn_at_their_middle_slice():
    x = torch.zeros(1, 1, 8, 4, 4)
    x[0, 0, 2, 1, 1] = 1.0  # the planted voxel, in the middle of depths 0-3
    effect = torch.zeros(1, 1, 8, 4, 4)
    effect[0, 0, :4] = 2.0  # one group over depths 0-3 (its effect the same on each)
    effect[0, 0, 4:] = 0.5
    (_, fig), = map_figures(MapData(x, {"causal": effect}, "input_effect"), "image")
    assert "depth slice 2 of 0–7 (largest mean |causal|; 0–3 equal, the middle one)" in _title(fig)
    assert float(_drawn_input(fig).max()) == 1.0  # the planted voxel is in the drawn slice


def test_a_single_largest_slice_is_drawn_as_before():
    effect = torch.zeros(1, 1, 8, 4, 4)
    effect[0, 0, 5] = 1.0
    (_, fig), = map_figures(MapData(torch.rand(1, 1, 8, 4, 4), {"causal": effect}, "input_effect"), "image")
    assert "depth slice 5 of 0–7 (largest mean |causal|)" in _title(fig)
