"""newuser36: Sobol' interval bars of image patches name each patch's whole box.

On a 3x64x64 image with 16x16 patches the rows "12 (rows 48–63, cols 0–15)" were cut at 24 characters to
"12 (rows 48–63, cols 0–…": the column range, half of where the patch lies, was lost.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.tensorboard import _interval_figure


def _sobol_result(rows: list[dict]) -> AuditResult:
    return AuditResult(audit="sobol", tables={"indices": rows}, meta={"confidence": 0.95})


def _row(group: int, r0: int, c0: int, size: int, value: float) -> dict:
    return {"group": str(group), "rows": [r0, r0 + size], "cols": [c0, c0 + size], "S": value, "S_ci": [value - 0.1, value + 0.1],
            "ST": value, "ST_ci": [value - 0.1, value + 0.1]}


def test_patch_boxes_of_a_64_pixel_image_are_named_whole():
    rows = [_row(12, 48, 0, 16, 0.5), _row(3, 0, 48, 16, 0.3), _row(15, 48, 48, 16, 0.1)]
    fig = _interval_figure(_sobol_result(rows), "indices", rows)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["12 (rows 48–63, cols 0–15)", "3 (rows 0–15, cols 48–63)", "15 (rows 48–63, cols 48–63)"]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for text in fig.axes[0].get_yticklabels():  # inside the figure, not cut at its left edge
        assert text.get_window_extent(renderer).x0 >= 0


def test_a_224_pixel_image_box_fits_and_named_rows_keep_their_limit():
    rows = [_row(195, 208, 208, 16, 0.5)]
    labels = [t.get_text() for t in _interval_figure(_sobol_result(rows), "indices", rows).axes[0].get_yticklabels()]
    assert labels == ["195 (rows 208–223, cols 208–223)"]
    named = [{"group": "credit_utilisation_ratio_last_12_months", "S": 0.5, "S_ci": [0.4, 0.6]}]
    r = AuditResult(audit="sobol", tables={"indices": named}, meta={"feature_names": ["credit_utilisation_ratio_last_12_months"]})
    labels = [t.get_text() for t in _interval_figure(r, "indices", named).axes[0].get_yticklabels()]
    assert labels == ["credit_utilisation_rati…"]
