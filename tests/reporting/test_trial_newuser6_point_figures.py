"""Point clouds ``[N, P, 3]`` (trial newuser6: a PointNet, shared MLP per point, max-pool over points).
Their maps were drawn as a sequence of ``P`` "time steps" with x, y, z as three features (the shape
rule's only reading of ``[N, T, F]``), and no figure kind drew points: ``figure_kind="points"`` now
scatters each sample's points in space, each coloured by its score."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.reporting.figure_kinds import map_figures, skip_reason
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

P = 16


class _Writer:
    def add_histogram(self, *args, **kwargs):
        pass

    def add_text(self, *args, **kwargs):
        pass

    def add_custom_scalars(self, *args, **kwargs):
        pass

    def flush(self):
        pass


class PointNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, pts):  # [N, P, 3]
        return self.head(self.mlp(pts).max(dim=1).values)


def _scatter(fig):
    """The points and colours of a figure's first panel: positions [P, 3], values [P]."""
    sc = fig.axes[0].collections[0]
    xs, ys, zs = sc._offsets3d
    return torch.tensor([list(xs), list(ys), list(zs)]).T.float(), torch.as_tensor(sc.get_array().data).float()


def test_the_renderer_draws_per_point_effects_at_the_points_of_each_sample():
    torch.manual_seed(0)
    model = PointNet().eval()
    x = torch.randn(3, P, 3)
    per_point = torch.arange(P).reshape(1, P, 1).expand(1, P, 3)
    result = InputEffectAudit(feature_mask=per_point, ace_values=None).run(model, Probe(x))
    figures = {}
    renderer = TensorBoardRenderer(figure_kind="points")
    renderer._figure = lambda writer, tag, fig, step: figures.__setitem__(tag, fig)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        renderer.render(_Writer(), 0, [result], x)
    assert not [str(w.message) for w in caught if "not drawn" in str(w.message)]
    fig = figures["causal/input_effect/maps/sample_1"]
    points, colours = _scatter(fig)
    with torch.no_grad():  # brute force: each point moved to the origin (baseline 0)
        out = model(x[1:2])
        target = int(out.argmax())
        brute = torch.stack([out[0, target] - model(x[1:2].index_fill(1, torch.tensor([p]), 0.0))[0, target] for p in range(P)])
    order = [int((x[1] - q).abs().sum(1).argmin()) for q in points]  # each drawn point's index in the sample
    assert sorted(order) == list(range(P))  # every point drawn once, where it is
    assert torch.allclose(colours, brute[order], atol=1e-5)


def test_maps_per_coordinate_colour_each_point_by_its_strongest_coordinate_and_global_maps_use_sample_0():
    x = torch.randn(2, P, 3)
    saliency = torch.zeros(2, P, 3)
    saliency[:, 4, 1], saliency[:, 4, 2], saliency[:, 7, 0] = 0.2, -0.9, 0.5  # point 4: its y and z; point 7: x
    (tag, fig), = [f for f in map_figures(MapData(x[:1], {"causal": saliency[:1]}, "cb"), "points")]
    points, colours = _scatter(fig)
    by_point = dict(zip([int((x[0] - q).abs().sum(1).argmin()) for q in points], colours.tolist()))
    assert tag == "maps/sample_0" and by_point[4] == pytest.approx(-0.9) and by_point[7] == pytest.approx(0.5)
    assert by_point[0] == 0.0
    glob = map_figures(MapData(x, {"first": saliency[:1].abs()}, "sobol"), "points")
    assert [t for t, _ in glob] == ["maps/sample_0"] and "whole probe" in glob[0][1]._suptitle.get_text()


def test_the_points_kind_is_taken_by_the_callback_and_refuses_shapes_that_hold_no_points():
    assert CausalAuditCallback([InputEffectAudit()], figure_kind="points")._renderer.figure_kind == "points"
    assert skip_reason("points", torch.zeros(2, P, 3)) is None
    assert "[N, P, D]" in skip_reason("points", torch.zeros(2, 1, 8, 8))
    assert "2 or more coordinates" in skip_reason("points", torch.zeros(2, P, 1))


def test_a_conv1d_pointnets_channels_first_cloud_is_drawn_at_the_same_points():
    # [N, 3, P], as a PointNet of Conv1d(3, ., 1) layers takes it, was drawn as 3 points of P coordinates
    x = torch.randn(1, P, 3)
    effect = torch.zeros(1, P, 3)
    effect[0, 5], effect[0, 11] = 0.7, -0.3
    (_, last), = map_figures(MapData(x, {"causal": effect}, "ie"), "points")
    (_, first), = map_figures(MapData(x.transpose(1, 2), {"causal": effect.transpose(1, 2)}, "ie"), "points")
    for fig in (last, first):
        points, colours = _scatter(fig)
        assert points.shape == (P, 3)
        by_point = dict(zip([int((x[0] - q).abs().sum(1).argmin()) for q in points], colours.tolist()))
        assert by_point[5] == pytest.approx(0.7) and by_point[11] == pytest.approx(-0.3) and sorted(by_point) == list(range(P))
    assert skip_reason("points", torch.zeros(2, 3, P)) is None and "[N, D, P]" in skip_reason("points", torch.zeros(2, 1, P))
