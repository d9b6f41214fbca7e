"""The TensorBoard writer's path redraws one counterfactual grid from one audit to the next (drawing_s25: its 12
axes and colour bar were about half of its cost, its constrained layout the rest). Each audit's image must be the
pixels of the grid drawn in a figure of its own, as ``TensorBoardRenderer.figures`` (which keeps every figure) draws it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.audits.counterfactual import _triptych
from lightning_causal.reporting import counterfactual_figures
from lightning_causal.reporting.counterfactual_figures import counterfactual_figure
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, figure_image
from tests.reporting.test_drawing_s24_reused_rows import _built, _Images

TAG = "causal/counterfactual/images/counterfactuals"


def _audit(seed: int, shape=(1, 8, 8), n: int = 4, failed=(), labels=None, change: float = 0.5, nan: bool = False) -> AuditResult:
    """A CounterfactualAudit-like result of ``n`` misclassified samples; ``change`` 0: counterfactuals equal to the
    inputs (every difference 0); ``nan``: one NaN pixel in the first sample."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *shape, generator=g)
    if nan:
        x[0, 0, 1, 2] = float("nan")
    cf = (x + change * torch.randn(n, *shape, generator=g)).clamp(0, 1)
    labels = labels or [(seed + i) % 3 for i in range(n)]
    rows = [{"index": i, "label": labels[i], "predicted": (labels[i] + 1) % 3,
             "counterfactual_predicted": (labels[i] + 1) % 3 if i in failed else labels[i], "success": i not in failed}
            for i in range(n)]
    return AuditResult("counterfactual", images={"counterfactuals": _triptych(x, cf)}, tables={"counterfactuals": rows},
                       meta={"class_names": ["cat", "dog", "eel"]})


def _epochs(monkeypatch, audits: list[AuditResult]) -> tuple[list[np.ndarray], list, int]:
    """Each audit's grid as the writer gets it from one renderer, audit after audit (a fit's epochs), the grids of
    their own (``figures()``) and how many grids the writer's path built."""
    built = _built(monkeypatch, counterfactual_figures)
    renderer = TensorBoardRenderer()
    written = []
    for step, r in enumerate(audits):
        writer = _Images()
        renderer.render_figures(writer, [r], None, step=step)
        written.append(writer.images[TAG])
    count = len(built)
    own = [figure_image(TensorBoardRenderer().figures([r])[TAG]) for r in audits]
    return written, own, count


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 6, 10), (1, 4, 32)])  # grey, colour, a wide image (stretched cells)
def test_later_audits_redraw_the_grid_with_the_pixels_of_their_own(monkeypatch, shape):
    # other images, other class names in the titles (other widths: the layout runs again); then every difference 0,
    # a NaN pixel and five samples (the title says 'the first 4 of 5': another text of the same height)
    audits = [_audit(0, shape), _audit(1, shape, labels=[1, 1, 2, 0]), _audit(2, shape, n=5, change=0.0, nan=True)]
    written, own, built = _epochs(monkeypatch, audits)
    assert built == 1  # the first audit's grid, redrawn by the next two
    for k, (a, b) in enumerate(zip(written, own)):
        assert a.shape == b.shape and np.array_equal(a, b), k
    assert not np.array_equal(written[0], written[1])


def test_a_grid_of_other_failures_columns_or_size_gets_a_figure_of_its_own(monkeypatch):
    audits = [_audit(0), _audit(1, failed=(1,)),  # a failed column: framed in red, titled longer
              _audit(2, n=3),  # three columns
              _audit(3, shape=(1, 8, 12)),  # another image shape
              _audit(4)]  # as the first, after the others: the last one kept was of another shape
    written, own, built = _epochs(monkeypatch, audits)
    assert built == 5
    for k, (a, b) in enumerate(zip(written, own)):
        assert a.shape == b.shape and np.array_equal(a, b), k


def test_the_redrawn_grid_is_laid_out_from_where_its_axes_were_built():
    # constrained layout reads the titles' extents against the axes' current positions: from where the last draw
    # left them, a grid of wider titles came out some pixels off a grid of its own
    kept: dict = {}
    g = torch.Generator().manual_seed(0)

    def panels():
        x = torch.rand(4, 1, 8, 8, generator=g)
        return {"input": x, "counterfactual": x.flip(-1), "difference": x.flip(-1) - x}

    first = counterfactual_figure(panels(), ["a → b", "c → d", "e → f", "g → h"], title="grids", kept=kept)
    figure_image(first)
    later, labels = panels(), ["WWWW → MMMM", "label 2 → pred 0", "x", "y"]  # wider, as wide cells (17 characters)
    again = counterfactual_figure(later, labels, title="grids", kept=kept)
    assert again is first
    assert np.array_equal(figure_image(again), figure_image(counterfactual_figure(later, labels, title="grids")))


def test_a_grid_not_drawn_yet_is_not_redrawn():
    kept: dict = {}
    x = torch.rand(2, 1, 8, 8)
    p = {"input": x, "counterfactual": x, "difference": x - x}
    assert counterfactual_figure(p, ["a", "b"], kept=kept) is not counterfactual_figure(p, ["a", "b"], kept=kept)
