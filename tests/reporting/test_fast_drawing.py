"""heatmap_row's shared layout (image_maps draws one row per probe sample): a row laid out with an earlier
row's tight_layout parameters is pixel for pixel the row laid out by its own tight_layout."""

from __future__ import annotations

import numpy as np
import torch

from lightning_causal.reporting.image_figures import heatmap_row
from lightning_causal.reporting.tensorboard import figure_image


def _rows(layout):
    g = torch.Generator().manual_seed(0)
    maps = [{"causal": torch.randn(1, 8, 8, generator=g), "Saliency": torch.rand(1, 8, 8, generator=g)} for _ in range(3)]
    samples = [torch.rand(1, 8, 8, generator=g) for _ in range(3)]
    titles = ["sample 0: class 3 (explains 3)", "sample 1: class 7 (explains 7)",
              "sample 2: a title long enough to wrap onto a second line of the figure, so its layout is its own"]
    vmax, signed = {"causal": 2.5, "Saliency": 1.0}, {"causal": True, "Saliency": False}
    return [figure_image(heatmap_row(s, m, vmax, t, signed=signed, note="red: raises, blue: lowers", layout=layout))
            for s, m, t in zip(samples, maps, titles)]


def test_shared_layout_draws_the_same_pixels_as_tight_layout_per_row():
    layout: dict = {}
    cached, own = _rows(layout), _rows(None)
    # the first two rows share one layout (same panels, scales, note and title height); the wrapped title has its own
    assert len(layout) == 2
    for a, b in zip(cached, own):
        assert a.shape == b.shape and np.array_equal(a, b)
