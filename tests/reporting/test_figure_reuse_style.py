"""A figure kept from one audit epoch to the next (an audit's heatmap rows, the counterfactual grid) was drawn in the
matplotlib style it was built under: a style changed in the middle of a fit (``rcParams``: here the figure's face
colour and the axes' edge colour) did not show in it, while a figure of its own drew it. The kept figures' key holds
the style (``kept_figures.style_key``): after a change they are built afresh, with the pixels of a figure of their own,
and so are they when the earlier style comes back."""

from __future__ import annotations

import matplotlib
import numpy as np
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.counterfactual_figures import counterfactual_figure
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, figure_image
from tests.reporting.test_drawing_s24_reused_rows import _Images

STYLE = {"figure.facecolor": "0.85", "axes.edgecolor": "tab:green"}
GREY = [217, 217, 217]  # 0.85 of 255, the face colour's pixels


def _epoch(seed: int) -> AuditResult:
    g = torch.Generator().manual_seed(seed)
    return AuditResult("toy", maps={"causal": torch.randn(3, 1, 6, 6, generator=g)}, meta={"targets": [0, 1, 0]})


def _images(renderer: TensorBoardRenderer, result: AuditResult, inputs: torch.Tensor, step: int) -> dict[str, np.ndarray]:
    writer = _Images()
    renderer.render_figures(writer, [result], inputs, step=step)
    return writer.images


def test_heatmap_rows_kept_across_epochs_follow_a_changed_style():
    inputs = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(9))
    renderer = TensorBoardRenderer(max_samples=3)
    first = _images(renderer, _epoch(0), inputs, 0)
    assert all(image[0, 0].tolist() == [255, 255, 255] for image in first.values())
    with matplotlib.rc_context(STYLE):
        styled = _images(renderer, _epoch(1), inputs, 1)
        own = _images(TensorBoardRenderer(max_samples=3), _epoch(1), inputs, 1)
    assert sorted(styled) == sorted(own) == [f"causal/toy/maps/sample_{i}" for i in range(3)]
    for tag, image in own.items():
        assert image[0, 0].tolist() == GREY  # the style shows in a figure of its own
        assert np.array_equal(styled[tag], image), tag  # and in the kept rows (before: white, black edges)
    again = _images(renderer, _epoch(2), inputs, 2)  # the style of epoch 0 again
    own = _images(TensorBoardRenderer(max_samples=3), _epoch(2), inputs, 2)
    for tag, image in own.items():
        assert image[0, 0].tolist() == [255, 255, 255] and np.array_equal(again[tag], image), tag


def _panels(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x, cf = torch.rand(2, 1, 8, 8, generator=g), torch.rand(2, 1, 8, 8, generator=g)
    return {"input": x, "counterfactual": cf, "difference": cf - x}


def test_the_counterfactual_grid_kept_across_epochs_follows_a_changed_style():
    kept: dict = {}
    labels = ["label 1 → pred 2", "label 0 → pred 1"]
    figure_image(counterfactual_figure(_panels(0), labels, title="counterfactuals", kept=kept))
    with matplotlib.rc_context(STYLE):
        styled = figure_image(counterfactual_figure(_panels(1), labels, title="counterfactuals", kept=kept))
        own = figure_image(counterfactual_figure(_panels(1), labels, title="counterfactuals"))
    assert own[0, 0].tolist() == GREY
    assert np.array_equal(styled, own)
