"""Review of the change (git diff 8e7989a), 59891f4 / 47a3e96: a sample's figure on the TensorBoard writer's path may
redraw an earlier sample's figure of the same layout. Nothing of the earlier sample may show in it: its title, the
input's grey scale, a map's "0 everywhere" and one-tick colour bar. Adversarial rows after a normal first sample: an
input and map of 0 only, inputs 100 times larger, a constant input, each compared pixel for pixel with the figure
``TensorBoardRenderer.figures()`` draws of its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting import frame_maps, image_figures
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, figure_image


class _Images:
    """A writer keeping the images it is given by tag."""

    def __init__(self) -> None:
        self.images: dict[str, np.ndarray] = {}

    def add_image(self, tag, image, step, dataformats="HWC"):
        self.images[tag] = image

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


@pytest.mark.parametrize("shape, kind, module", [((1, 6, 6), None, image_figures), ((1, 2, 5, 5), "frames", frame_maps)])
def test_a_redrawn_figure_shows_nothing_of_the_sample_drawn_in_it_before(monkeypatch, shape, kind, module):
    built = []

    class Counted(Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(module, "Figure", Counted)
    g = torch.Generator().manual_seed(0)
    inputs, maps = torch.rand(4, *shape, generator=g), torch.randn(4, *shape, generator=g)
    inputs[1], maps[1] = 0.0, 0.0  # input and map of 0 only: its own figure ("0 everywhere", a one-tick bar)
    inputs[2] *= 100.0  # another grey range, in sample 0's figure
    inputs[3] = 7.0  # a constant input (black, as imshow draws it), in sample 0's figure too
    result = AuditResult("toy", maps={"causal": maps}, meta={"targets": [0, 1, 0, 1], "class_names": ["cat", "dog"]})
    labels = torch.tensor([0, 1, 1, 0])  # every title its own
    writer = _Images()
    TensorBoardRenderer(max_samples=4, figure_kind=kind).render_figures(writer, [result], inputs, step=0, probe_labels=labels)
    assert len(built) == 2  # samples 0 and 1 built theirs; 2 and 3 redrew sample 0's after sample 1's was drawn
    kept = TensorBoardRenderer(max_samples=4, figure_kind=kind).figures([result], inputs, probe_labels=labels)
    assert sorted(kept) == sorted(writer.images) == [f"causal/toy/maps/sample_{i}" for i in range(4)]
    for tag, fig in kept.items():
        assert np.array_equal(figure_image(fig), writer.images[tag]), tag
    assert len({id(fig) for fig in kept.values()}) == 4  # figures() hands out a figure per sample, none redrawn
