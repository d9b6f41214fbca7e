"""The TensorBoard writer's path redraws one sequence figure per layout for the probe samples of one channel
(drawing_s25: the sequence kind built every sample's figure, its axes about a third of the building): a later sample
of the same map panels, scales, maps of 0 only, note and title height puts its line and bars in the earlier one's
figure and lays it out again (its input axis scales to the sample). Each figure's image must be the pixels of the
figure of its own that ``TensorBoardRenderer.figures`` (which keeps every figure) draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting import sequence_maps
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, figure_image
from tests.reporting.test_drawing_s24_reused_rows import _built, _Images


@pytest.mark.parametrize("steps, names, kind, built_figures", [
    # bars; samples 0, 1 (a title of two lines), 2 (a NaN score: a note saying so) and 4 (a map of 0 only) build theirs
    (48, ["causal"], "sequence", 4),
    (48, ["causal", "IntegratedGradients", "Saliency"], "sequence", 4 + 2 + 2),  # a figure per map
    (300, ["causal", "Saliency"], "sequence", 4 + 2),  # more steps than bars: two step outlines per map
    (40, ["causal", "Saliency"], "sequence_features_last", 4 + 2),  # [N, T, 1]
])
def test_one_channel_samples_redraw_a_figure_with_the_pixels_of_their_own(monkeypatch, steps, names, kind, built_figures):
    built = _built(monkeypatch, sequence_maps)
    g = torch.Generator().manual_seed(0)
    n = 5
    shape = (1, steps) if kind == "sequence" else (steps, 1)
    # inputs of other ranges (the input axis' tick labels of other widths, an offset above them), a constant one
    x = torch.rand(n, *shape, generator=g) * torch.tensor([1.0, 1000.0, 1e-4, 3.0, 0.5]).view(n, 1, 1)
    x[3] = 2.0
    maps = {name: torch.randn(n, *shape, generator=g) for name in names}
    maps[names[-1]] = maps[names[-1]].abs() if len(names) > 1 else maps[names[-1]]
    maps[names[0]][4] = 0.0  # no bars: the panel says "0 everywhere"
    maps[names[0]][2, 0, 0] = float("nan")
    result = AuditResult("toy", maps=maps, meta={"targets": [0, 1, 0, 0, 0],  # sample 1: the long name in its title
                                                  "class_names": ["cat", "a class of a name long enough to wrap the title of its figure"]})
    labels = torch.tensor([0, 1, 0, 0, 0])
    writer = _Images()
    TensorBoardRenderer(max_samples=n, figure_kind=kind).render_figures(writer, [result], x, step=0, probe_labels=labels)
    assert len(built) == built_figures
    kept = TensorBoardRenderer(max_samples=n, figure_kind=kind).figures([result], x, probe_labels=labels)
    assert sorted(kept) == sorted(writer.images) and len(kept) == n * (1 if len(names) == 1 else len(names))
    for tag, fig in kept.items():
        image = figure_image(fig)
        assert image.shape == writer.images[tag].shape and np.array_equal(image, writer.images[tag]), tag


def test_several_channels_build_their_figures():
    # a heatmap per map under the input's lines: not redrawn (each sample's figure its own, as before)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 2, 32, generator=g)
    result = AuditResult("toy", maps={"causal": torch.randn(3, 2, 32, generator=g)})
    figures = list(sequence_maps.sequence_maps(sequence_maps.MapData(x, result.maps, "toy", max_samples=3), reuse=True))
    assert len({id(fig) for _, fig in figures}) == 3
