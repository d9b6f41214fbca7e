"""The TensorBoard writer's path keeps an audit's heatmap rows from one audit epoch to the next (drawing_s25): a row
of a later epoch redraws the figure of an earlier one of the same panels, colour maps, note and title height, its
colour limits set (another epoch's maps have other limits) and laid out again from the subplot parameters it was
built with. Each row's image must be the pixels of the row drawn in a figure of its own, as
``TensorBoardRenderer.figures`` (which keeps every figure) draws it."""

from __future__ import annotations

import numpy as np
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting import image_figures
from lightning_causal.reporting.image_figures import heatmap_row
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, figure_image
from tests.reporting.test_drawing_s24_reused_rows import _built, _Images


def _epoch(seed: int, scale: float, shape=(1, 6, 6), n: int = 3, zero: int | None = None, nan: bool = False) -> AuditResult:
    """One audit epoch's maps (a signed one and an unsigned one) times ``scale``; ``zero``: that sample's signed map
    0 everywhere; ``nan``: a NaN pixel in sample 1's."""
    g = torch.Generator().manual_seed(seed)
    maps = {"causal": torch.randn(n, *shape, generator=g) * scale, "Saliency": torch.rand(n, *shape, generator=g) * scale}
    if zero is not None:
        maps["causal"][zero] = 0.0
    if nan:
        maps["causal"][1, 0, 2, 3] = float("nan")
    return AuditResult("toy", maps=maps, meta={"targets": [k % 2 for k in range(n)], "class_names": ["cat", "dog"]})


def test_later_epochs_redraw_the_rows_with_the_pixels_of_their_own(monkeypatch):
    built = _built(monkeypatch, image_figures)
    g = torch.Generator().manual_seed(0)
    inputs, labels = torch.rand(3, 1, 6, 6, generator=g), torch.tensor([0, 1, 1])
    # other limits every epoch: the colour bars' tick labels of other widths, an offset ('1e5', '1e-6') above them
    epochs = [_epoch(0, 1.0), _epoch(1, 2.5e5, nan=True), _epoch(2, 3e-6, zero=2), _epoch(3, 0.7)]
    renderer = TensorBoardRenderer(max_samples=3)
    written, counts = [], []
    for step, r in enumerate(epochs):
        writer = _Images()
        renderer.render_figures(writer, [r], inputs, step=step, probe_labels=labels)
        written.append(writer.images)
        counts.append(len(built))
    # epoch 0 builds sample 0's figure (samples 1 and 2 redraw it); the later epochs redraw it, but for the map of 0
    # only (its own panel text and colour bar: a figure of its own) and the map of a NaN pixel (its note says so)
    assert counts == [1, 2, 3, 3]
    for step, r in enumerate(epochs):
        own = TensorBoardRenderer(max_samples=3).figures([r], inputs, probe_labels=labels)
        assert sorted(own) == sorted(written[step]) == [f"causal/toy/maps/sample_{i}" for i in range(3)]
        for tag, fig in own.items():
            image = figure_image(fig)
            assert image.shape == written[step][tag].shape and np.array_equal(image, written[step][tag]), (step, tag)


def test_a_row_of_other_colour_limits_is_laid_out_as_a_new_figure():
    # tight_layout reads the colour bars' tick labels against the axes' current positions: from where the last
    # row's layout left them (narrow labels), a row of wide labels ('250000') came out thousands of pixels off
    layout: dict = {}
    g = torch.Generator().manual_seed(0)
    rows = [(torch.rand(1, 8, 8, generator=g), {"causal": torch.randn(1, 8, 8, generator=g) * k}) for k in (1.0, 2.5e5)]
    first = heatmap_row(*rows[0], {"causal": 3.0}, "t", signed={"causal": True}, layout=layout, reuse=True)
    figure_image(first)
    again = heatmap_row(*rows[1], {"causal": 7.5e5}, "t", signed={"causal": True}, layout=layout, reuse=True)
    assert again is first and again.axes[1].get_images()[0].get_clim() == (-7.5e5, 7.5e5)
    own = heatmap_row(*rows[1], {"causal": 7.5e5}, "t", signed={"causal": True})
    assert np.array_equal(figure_image(again), figure_image(own))


def test_a_row_of_another_colour_map_gets_a_figure_of_its_own():
    layout: dict = {}
    g = torch.Generator().manual_seed(0)
    sample, signed_map = torch.rand(1, 8, 8, generator=g), torch.randn(1, 8, 8, generator=g)
    first = heatmap_row(sample, {"m": signed_map}, {"m": 2.0}, "t", layout=layout, reuse=True)  # RdBu_r
    figure_image(first)
    other = heatmap_row(sample, {"m": signed_map.abs()}, {"m": 2.0}, "t", layout=layout, reuse=True)  # Reds
    assert other is not first
    assert np.array_equal(figure_image(other), figure_image(heatmap_row(sample, {"m": signed_map.abs()}, {"m": 2.0}, "t")))
