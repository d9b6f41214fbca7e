"""The TensorBoard writer's path redraws one heatmap figure per layout for the probe samples' rows (drawing_s24:
building the axes, ticks and colour bars was most of a row's cost). Each row's image must be the pixels of the row
drawn in a figure of its own, as ``TensorBoardRenderer.figures`` (which keeps every figure) still draws it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting import frame_maps, image_figures
from lightning_causal.reporting.image_figures import heatmap_row
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


def _built(monkeypatch, module) -> list[Figure]:
    """The figures ``module`` builds from now on (its ``Figure`` counted)."""
    built: list[Figure] = []

    class Counted(Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(module, "Figure", Counted)
    return built


def _result(n: int, shape: tuple[int, ...], names: list[str], seed: int) -> AuditResult:
    g = torch.Generator().manual_seed(seed)
    maps = {name: torch.randn(n, *shape, generator=g) for name in names}
    maps[names[-1]] = maps[names[-1]].abs()  # an unsigned map (Saliency-like) beside signed ones
    maps[names[0]][2] = 0.0  # sample 2's first map is 0 everywhere: its panel says so, its colour bar one tick
    return AuditResult("toy", maps=maps, meta={"targets": [k % 3 for k in range(n)], "class_names": ["a", "b", "a much longer name"]})


@pytest.mark.parametrize("shape, names, n, built_figures", [
    ((1, 8, 8), ["causal", "Saliency"], 4, 2),  # grey input, one figure per sample: samples 0 and 2 build theirs
    ((3, 6, 10), ["causal", "IntegratedGradients", "Saliency"], 3, 6),  # colour input, one figure per map: samples 0, 2
])
def test_reused_rows_draw_the_pixels_of_their_own_figures(monkeypatch, shape, names, n, built_figures):
    built = _built(monkeypatch, image_figures)
    torch.manual_seed(0)
    inputs = torch.rand(n, *shape) * torch.arange(1, n + 1).view(n, 1, 1, 1)  # each sample its own grey range
    results, labels = [_result(n, shape, names, 1)], torch.tensor([0, 1, 2, 0])[:n]
    renderer, writer = TensorBoardRenderer(max_samples=n), _Images()
    renderer.render_figures(writer, results, inputs, step=0, probe_labels=labels)
    # the writer's path: sample 0 builds the figures, sample 2 (a map of 0 only; the long class name's title) its
    # own; samples 1 and 3 redraw sample 0's
    assert len(built) == built_figures
    kept = renderer.figures(results, inputs, probe_labels=labels)  # figures of their own, kept
    assert sorted(writer.images) == sorted(kept) and len(kept) == n * (1 if len(names) == 2 else len(names))
    for tag, fig in kept.items():
        own = figure_image(fig)
        assert own.shape == writer.images[tag].shape and np.array_equal(own, writer.images[tag]), tag
    rows = list(writer.images.values())
    assert not any(np.array_equal(a, b) for a, b in zip(rows, rows[1:]))  # the rows differ


def test_a_row_of_another_title_height_gets_its_own_figure():
    layout: dict = {}
    g = torch.Generator().manual_seed(0)
    rows = [(torch.rand(1, 8, 8, generator=g), {"causal": torch.randn(1, 8, 8, generator=g)}) for _ in range(3)]
    titles = ["short", "a title long enough to wrap onto a second line of the figure, so its layout is its own", "short too"]
    figs = []
    for (s, m), t in zip(rows, titles):
        figs.append(heatmap_row(s, m, {"causal": 3.0}, t, signed={"causal": True}, layout=layout, reuse=True))
        figure_image(figs[-1])  # drawn before the next row is asked for, as the writer draws it
    assert figs[0] is not figs[1] and figs[2] is figs[0]  # the wrapped title's row is laid out anew; the third reuses
    own = heatmap_row(*rows[2], {"causal": 3.0}, titles[2], signed={"causal": True})
    assert np.array_equal(figure_image(figs[2]), figure_image(own))


def test_a_row_not_drawn_yet_is_not_redrawn():
    layout: dict = {}
    g = torch.Generator().manual_seed(0)
    rows = [(torch.rand(1, 8, 8, generator=g), {"causal": torch.randn(1, 8, 8, generator=g)}) for _ in range(2)]
    kept = [heatmap_row(s, m, {"causal": 3.0}, "t", signed={"causal": True}, layout=layout, reuse=True) for s, m in rows]
    assert kept[0] is not kept[1]  # a caller keeping figures without drawing them gets each its own


def test_video_frames_redraw_one_figure_with_the_pixels_of_their_own(monkeypatch):
    built = _built(monkeypatch, frame_maps)
    g = torch.Generator().manual_seed(0)
    n, shape = 3, (3, 2, 6, 6)  # colour video [C, T, H, W] of 2 frames
    inputs = torch.rand(n, *shape, generator=g)
    inputs[1, 0] = 0.5  # sample 1's red channel constant: the colour stretch of its own range
    results = [_result(n, shape, ["causal", "Saliency"], 2)]
    renderer, writer = TensorBoardRenderer(max_samples=n, figure_kind="frames"), _Images()
    labels = torch.tensor([0, 1, 0])
    renderer.render_figures(writer, results, inputs, step=0, probe_labels=labels)
    assert len(built) == 2  # sample 0's figure, redrawn for sample 1; sample 2 (a map of 0 only) its own
    kept = renderer.figures(results, inputs, probe_labels=labels)
    assert sorted(writer.images) == sorted(kept) == [f"causal/toy/maps/sample_{i}" for i in range(n)]
    for tag, fig in kept.items():
        assert np.array_equal(figure_image(fig), writer.images[tag]), tag


# Review of the change (git diff 8e7989a): nothing of the sample drawn before may show in a redrawn figure (its title,
# the input's grey scale, a map's "0 everywhere" and one-tick colour bar). Adversarial rows after a normal first
# sample: an input and map of 0 only, inputs 100 times larger, a constant input.
@pytest.mark.parametrize("shape, kind, module", [((1, 6, 6), None, image_figures), ((1, 2, 5, 5), "frames", frame_maps)])
def test_a_redrawn_figure_shows_nothing_of_the_sample_drawn_in_it_before(monkeypatch, shape, kind, module):
    built = _built(monkeypatch, module)
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
