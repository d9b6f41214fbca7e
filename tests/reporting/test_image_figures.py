"""Figures of images in TensorBoard: CounterfactualAudit's input / counterfactual / difference rows,
one labelled column per sample."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.audits.base import AuditResult, Probe
from lightning_causal.audits.counterfactual import CounterfactualAudit, _triptych
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.helpers.models import DigitsCNN


def _figures(monkeypatch, results, **renderer) -> dict:
    import lightning_causal.reporting.tensorboard as tb

    from .test_figure_kinds import Writer

    figures = {}
    monkeypatch.setattr(tb.TensorBoardRenderer, "_figure", staticmethod(lambda writer, tag, fig, step: figures.update({tag: fig})))
    TensorBoardRenderer(**renderer).render(Writer(), 0, results, None)
    return figures


def test_counterfactuals_are_rows_of_panels_with_labelled_columns_and_failures_marked(monkeypatch):
    # was one 348x153-pixel grid: each input|counterfactual|difference strip in a small square cell titled #k
    x = torch.rand(5, 1, 8, 16, generator=torch.Generator().manual_seed(0))
    cf = x.clone()
    cf[:, :, 2:4, 3:6] += 0.5
    cf[1] = x[1]  # no counterfactual found: the input is kept
    rows = [{"index": i, "label": 2, "predicted": 0, "counterfactual_predicted": 0 if i == 1 else 2, "success": i != 1}
            for i in range(5)]
    r = AuditResult("counterfactual", images={"counterfactuals": _triptych(x, cf)}, tables={"counterfactuals": rows},
                    meta={"class_names": ["cat", "dog", "eel"]})
    fig = _figures(monkeypatch, [r])["causal/counterfactual/images/counterfactuals"]
    grid, bar = fig.axes[:12], fig.axes[12:]
    assert len(grid) == 12 and len(bar) == 1  # 3 rows x 4 columns (max_samples), one colour bar
    assert [ax.get_ylabel() for ax in grid[::4]] == ["input", "counterfactual", "difference\n(cf − input)"]
    titles = [ax.get_title() for ax in grid[:4]]
    assert titles[0] == "label 'eel'\n→ pred 'cat'\n→ cf 'eel' ✓" and titles[1] == "label 'eel'\n→ pred 'cat'\n→ cf 'cat' ✗ not found"
    assert [ax.title.get_color() for ax in grid[:4]] == ["black", "tab:red", "black", "black"]
    assert grid[1].spines["top"].get_edgecolor()[:3] == pytest.approx((0.839, 0.153, 0.157), abs=1e-3)
    diff = grid[8].get_images()[0]
    assert diff.get_cmap().name == "RdBu_r" and diff.get_clim() == (-1.0, 1.0)  # centred at 0
    assert torch.as_tensor(diff.get_array()).max() == pytest.approx(1.0) and grid[9].get_images()[0].get_array().max() == 0.0
    assert "the first 4 of 5" in fig._suptitle.get_text()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.get_size_inches() * fig.dpi
    assert width >= 500 and height >= 300
    for ax in grid:  # cells keep the images' 2:1 aspect
        box = ax.get_window_extent(renderer)
        assert box.width / box.height == pytest.approx(2.0, rel=0.05)
    texts = [fig._suptitle, *(ax.title for ax in grid[:4]), *(ax.yaxis.label for ax in grid[::4])]
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert all(0 <= b.x0 and b.x1 <= width and 0 <= b.y0 and b.y1 <= height for b in boxes)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_the_counterfactual_audit_is_drawn_as_labelled_panels(monkeypatch):
    torch.manual_seed(0)
    model = DigitsCNN(channels=(4, 6), hidden=8).eval()
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = model(x).topk(2, dim=1).indices[:, 1]  # every sample misclassified, towards the runner-up
    r = CounterfactualAudit(max_samples=3, settings=CounterfactualSettings(steps=10)).run(model, Probe(x, labels))
    figures = _figures(monkeypatch, [r], max_samples=8)
    assert sorted(figures) == ["causal/counterfactual/images/counterfactuals"]
    fig = figures["causal/counterfactual/images/counterfactuals"]
    assert [ax.get_title().split("\n")[0] for ax in fig.axes[:3]] == [
        f"label {row['label']} → pred {row['predicted']}" for row in r.tables["counterfactuals"]]
