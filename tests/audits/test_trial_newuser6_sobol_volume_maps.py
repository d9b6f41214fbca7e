"""SobolAudit on videos ``[N, C, T, H, W]`` (trial newuser6, a Conv3d): its ``total``/``first`` maps were
made for inputs of 2 to 4 dimensions only, so a video probe got no Sobol' map in TensorBoard while every
other audit's maps of the same probe were drawn (the image kind draws volumes, ``"frames"`` every frame)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import SobolAudit
from lightning_causal.audits.base import Probe
from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.map_data import MapData


class FirstFrame(nn.Module):
    """A linear score of frame 0 only: y = 2 * mean(x[:, :, 0]) (frames 1 and 2 have no effect)."""

    def forward(self, x):  # [N, 1, 3, 2, 2]
        return torch.stack([2 * x[:, :, 0].mean((1, 2, 3)), torch.zeros(len(x))], 1)


def test_a_video_probe_gets_sobol_maps_with_each_frames_index_and_they_are_drawn():
    x = torch.rand(64, 1, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    frames = torch.arange(3).reshape(1, 1, 3, 1, 1).expand(1, 1, 3, 2, 2)  # group t: frame t
    result = SobolAudit(n=256, feature_mask=frames, probability=False, n_bootstrap=10).run(FirstFrame(), Probe(x))
    assert set(result.maps) == {"total", "first"} and result.maps["total"].shape == (1, 1, 3, 2, 2)
    for name in ("total", "first"):  # each element holds its frame's index: all of the variance in frame 0
        assert torch.allclose(result.maps[name][0, 0, :, 0, 0], result.vectors[name].float())
        assert result.maps[name][0, 0, 0].min() > 0.9 and result.maps[name][0, 0, 1:].abs().max() < 0.05
    data = MapData(x, dict(result.maps), "sobol", result.meta)
    assert [t for t, _ in map_figures(data)] == ["maps/sample_0"]  # the image kind: one figure over the whole probe
    assert [t for t, _ in map_figures(data, "frames")] == ["maps/sample_0"]
