"""Figures comparing causal and Captum explanations (plain matplotlib ``Figure`` objects).

- :func:`attribution_grid`: rows of probe samples, columns ``input | causal | each Captum method``,
  signed maps on a symmetric diverging scale shared by each column, unsigned maps (Saliency) on a
  sequential scale from 0 (never clipped), one colourbar per column.
- :func:`curves_figure`: deletion and insertion curves of every explanation side by side.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
from matplotlib.figure import Figure
from torch import Tensor

from lightning_causal.reporting.figure_style import not_finite_colours, not_finite_notes
from lightning_causal.reporting.image_figures import map_scale, show_input, strongest_channel
from lightning_causal.reporting.map_data import SERIES_COLOURS
from lightning_causal.reporting.not_finite_marks import RINGED, ring_not_finite

__all__ = ["attribution_grid", "curves_figure"]


def _image(x: Tensor) -> Tensor:
    """A 2-D image of one sample ``[C, H, W]`` / ``[H, W]`` (each pixel's channel of largest |value|,
    :func:`~lightning_causal.reporting.image_figures.strongest_channel`) or a 1-D row ``[D]``."""
    x = x.detach().float().cpu()
    if x.dim() == 3:
        x = strongest_channel(x, 0)
    return x.unsqueeze(0) if x.dim() == 1 else x


def attribution_grid(
    input_image: Tensor, maps: dict[str, Tensor], max_samples: int = 4, batched: bool | None = None
) -> Figure:
    """``input | causal | method_1 | ...`` for one sample or a batch (one row per sample, at most
    ``max_samples``). By default ``[N, C, H, W]`` and tabular ``[N, D]`` are batches, ``[C, H, W]``
    and ``[D]`` one sample; pass ``batched`` for ``[N, H, W]`` or a single ``[H, W]`` image.

    Each column shares one colour scale with ``v`` the largest |value| of that column over the rows
    drawn: symmetric and diverging, ``[-v, v]``, for a signed map, sequential ``[0, v]`` for a map
    without negative values (:func:`~lightning_causal.reporting.image_figures.map_scale`), so signs and
    relative magnitudes stay readable and nothing is clipped; pixels are drawn unsmoothed (nearest
    neighbour); tabular inputs ``[D]`` are drawn as one-row strips. A NaN or infinite score is a grey pixel, ringed
    (:func:`~lightning_causal.reporting.not_finite_marks.ring_not_finite`), counts
    towards no scale, and a line under the grid says how many of each column's scores drawn are not finite
    (:mod:`~lightning_causal.reporting.figure_style`'s rule for every map figure).

    Args:
        input_image: one sample or a batch.
        maps: name -> map shaped like ``input_image`` (``"causal"`` first by convention).

    Returns:
        A matplotlib ``Figure``.

    Examples:
        >>> import torch
        >>> fig = attribution_grid(torch.rand(1, 8, 8), {"causal": torch.randn(1, 8, 8), "Saliency": torch.rand(1, 8, 8)})
        >>> len(fig.axes)  # 3 images + 2 colourbars
        5
    """
    if not maps:
        raise ValueError("Expected argument `maps` to hold at least one map but got none")
    if batched is None:
        batched = input_image.dim() in (2, 4)
    inputs = input_image[:max_samples] if batched else input_image.unsqueeze(0)
    columns = {k: (v[:max_samples] if batched else v.unsqueeze(0)) for k, v in maps.items()}
    for name, m in columns.items():
        if m.shape != inputs.shape:
            raise ValueError(f"Expected map {name!r} shaped like the input {list(inputs.shape)} but got {list(m.shape)}")
    rows, cols = inputs.shape[0], 1 + len(columns)
    # set on what is drawn (each pixel's strongest channel), diverging for signed maps, from 0 for unsigned ones
    scales = {k: map_scale(torch.stack([_image(v[r]) for r in range(rows)])) for k, v in columns.items()}
    fig = Figure(figsize=(2.4 * cols, 2.3 * rows + 0.3), layout="constrained")  # room for each column's colour bar
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        if inputs[r].dim() >= 2:
            show_input(axes[r][0], inputs[r])
        else:  # a row of features
            axes[r][0].imshow(_image(inputs[r]).numpy(), cmap="gray")
        for c, (name, m) in enumerate(columns.items(), start=1):
            cmap, lo, hi = scales[name]
            drawn = _image(m[r])
            im = axes[r][c].imshow(drawn.numpy(), cmap=not_finite_colours(cmap), vmin=lo, vmax=hi, interpolation="nearest")
            ring_not_finite(axes[r][c], drawn, whole=m)  # one grey pixel among pale ones is hard to find (not_finite_marks)
            if r == 0:
                axes[r][c].set_title(name, fontsize=9)
                fig.colorbar(im, ax=[axes[i][c] for i in range(rows)], fraction=0.046, pad=0.04)
        if r == 0:
            axes[r][0].set_title("input", fontsize=9)
    for ax in fig.axes[: rows * cols]:
        ax.set_xticks([])
        ax.set_yticks([])
    notes = not_finite_notes({k: v.detach() for k, v in columns.items()}, RINGED)  # the rows drawn, every channel
    if notes:
        fig.supxlabel("\n".join(notes), fontsize=8, color="0.3")
    return fig


def curves_figure(curves: dict[str, dict[str, list[float]]], score: str = "target score",
                  auc: dict[str, dict[str, float]] | None = None, flat: Collection[str] = ()) -> Figure:
    """Deletion and insertion curves (``AuditResult.curves`` of
    :class:`~lightning_causal.audits.captum_baseline.CaptumBaseline`): one panel per curve kind,
    one line per explanation (causal drawn thick and black, each method in the colour of its bars on the
    tabular top-features card: ``SERIES_COLOURS`` in order after causal), the area under each in the legend (three
    significant digits, as the comparison table: at two decimals 0.128 and 0.135 both read 0.13).
    ``score``: what the curves record (the audit's ``meta["curve_score"]``), the y axis' label: a
    raw output's areas are in its units, not probabilities. ``auc``: the areas to show,
    ``{kind: {name: area}}`` (the audit's ``meta["curve_auc"]``, the mean of each sample's area over
    its own real groups); a line without one shows the area under its drawn mean curve, which with
    padding (each sample's fractions of its own real groups, drawn at their mean) is not that. ``flat``: the
    explanations of 0 everywhere (a gradient method on a model whose gradient is 0), which rank nothing: ties
    go by group id, so their lines remove the groups in index order, said so in the legend.

    Examples:
        >>> fig = curves_figure({"deletion": {"x": [0, 0.5, 1], "causal": [1, 0.2, 0], "Saliency": [1, 0.6, 0]}})
        >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ['causal (AUC 0.35)', 'Saliency (AUC 0.55)']
    """
    if not curves:
        raise ValueError("Expected argument `curves` to hold at least one curve kind but got none")
    fig = Figure(figsize=(4.2 * len(curves), 3.2))
    axes = fig.subplots(1, len(curves), squeeze=False)
    for ax, (kind, series) in zip(axes[0], curves.items()):
        x = [float(v) for v in series.get("x", [])]
        names = sorted((k for k in series if k != "x"), key=lambda k: k != "causal")
        offset = 0 if "causal" in names else 1  # the tabular bars' colours: causal black, then the methods in order
        for series_index, name in enumerate(names, start=offset):  # SERIES_COLOURS[0] is causal's black
            ys = [float(v) for v in series[name]]
            xs = x if len(x) == len(ys) else [i / max(1, len(ys) - 1) for i in range(len(ys))]
            area = (auc or {}).get(kind, {}).get(name)
            area = sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(len(ys) - 1)) if area is None else area
            said = "all 0: index order, " if name in flat else ""  # no ranking: the groups by id
            ax.plot(xs, ys, label=f"{name} ({said}AUC {area:.3g})", color=SERIES_COLOURS[series_index % len(SERIES_COLOURS)],
                    linewidth=2.2 if name == "causal" else 1.2)  # 3 digits, as the comparison table
        ax.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} area = more faithful)", fontsize=9)
        ax.set_xlabel("fraction of feature groups " + ("removed" if kind == "deletion" else "restored"))
        ax.set_ylabel(score, **({"fontsize": 7} if len(score) > 20 else {}))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
