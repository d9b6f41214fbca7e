"""The TensorBoard writer's path keeps an audit's heatmap rows from one audit epoch to the next, under a key that holds
each sample's note, which since 7324d4c says how many of its scores are not finite. A diverging model whose count of
NaN scores changed every epoch kept one more figure (about 1 MB) per sample and epoch for the rest of the fit: 60
figures after 15 epochs of 4 samples. The store now keeps the figures of the last epoch and of this one only."""

from __future__ import annotations

import numpy as np
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting import image_figures
from lightning_causal.reporting.kept_figures import forget_unused, keep_figure
from lightning_causal.reporting.tensorboard import _KEPT, TensorBoardRenderer, figure_image
from tests.reporting.test_drawing_s24_reused_rows import _built, _Images


def _epoch(e: int, nan_counts: list[int]) -> AuditResult:
    maps = torch.randn(len(nan_counts), 1, 6, 6, generator=torch.Generator().manual_seed(e))
    for i, c in enumerate(nan_counts):
        maps[i].view(-1)[:c] = float("nan")
    return AuditResult("toy", maps={"causal": maps}, meta={"targets": [0] * len(nan_counts)})


def _figures(renderer: TensorBoardRenderer) -> int:
    return sum(1 for store in _KEPT[renderer].values() for key in store if key[0] == "figure")


def test_a_long_fit_whose_nan_counts_change_keeps_two_epochs_of_rows_at_most(monkeypatch):
    built = _built(monkeypatch, image_figures)
    inputs = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(9))
    renderer = TensorBoardRenderer(max_samples=4)
    kept, builds = [], []
    for e in range(6):
        # samples 0-2: a count of NaN scores of their own every epoch (a new note, a new layout); sample 3: none
        r = _epoch(e, [1 + 3 * e, 2 + 3 * e, 3 + 3 * e, 0])
        writer, before = _Images(), len(built)
        renderer.render_figures(writer, [r], inputs, step=e)
        kept.append(_figures(renderer))
        builds.append(len(built) - before)
        if e == 5:
            own = TensorBoardRenderer(max_samples=4).figures([r], inputs)
            for tag, fig in own.items():  # every row the pixels of a figure of its own
                assert np.array_equal(figure_image(fig), writer.images[tag]), (e, tag)
    assert kept == [4, 7, 7, 7, 7, 7]  # before: 4, 7, 10, 13, 16, 19 (three new figures an epoch, none let go)
    # sample 3's row of no NaN score keeps its figure from epoch to epoch: built once
    assert builds == [4, 3, 3, 3, 3, 3]


def test_forget_unused_lets_go_of_what_the_last_call_did_not_use():
    from matplotlib.figure import Figure

    store: dict = {"layout": 1}  # a caller's own entry stays
    kept = [keep_figure(store, name, fig := Figure(), None, fig.subplots()) for name in ("a", "b")]
    forget_unused(store)  # both kept in the call before: kept for the next
    assert len(store) == 3
    kept[0].used = True  # taken in this call (kept_figure sets it)
    forget_unused(store)
    assert [k[1] if isinstance(k, tuple) else k for k in store] == ["layout", "a"]
    forget_unused(None)
