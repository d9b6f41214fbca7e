"""Matplotlib figures of audit results: plain ``Figure`` objects (no pyplot state, the backend is never switched)."""

from __future__ import annotations

from matplotlib.figure import Figure
from torch import Tensor

__all__ = ["heatmap_row", "bar_figure", "interval_bar_figure", "interval_metrics", "curves_figure", "to_image"]


def to_image(x: Tensor) -> Tensor:
    """A 2-D image of one sample ``[C, H, W]`` / ``[H, W]`` (channels averaged)."""
    x = x.detach().float().cpu()
    return x.mean(0) if x.dim() == 3 else x


def heatmap_row(sample: Tensor, maps: dict[str, Tensor], vmax: dict[str, float] | None = None) -> Figure:
    """One probe sample: ``input | map_1 | map_2 | ...``; signed maps on a symmetric diverging scale
    (not clipped), one colour scale per column (``vmax[name]``, default the map's own max |value|)."""
    n = 1 + len(maps)
    fig = Figure(figsize=(2.4 * n, 2.6))
    axes = fig.subplots(1, n, squeeze=False)
    axes = axes[0]
    axes[0].imshow(to_image(sample), cmap="gray")
    axes[0].set_title("input", fontsize=9)
    for ax, (name, m) in zip(axes[1:], maps.items()):
        img = to_image(m)
        lim = (vmax or {}).get(name) or float(img.abs().max()) or 1.0
        im = ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def bar_figure(values: Tensor, title: str, top: int = 32) -> Figure:
    """Bars of the ``top`` largest values (e.g. unit importance), labelled by index."""
    v = values.detach().float().cpu()
    k = min(top, v.numel())
    order = v.abs().topk(k).indices
    fig = Figure(figsize=(max(4.0, 0.25 * k + 1.5), 2.8))
    ax = fig.subplots()
    ax.bar(range(k), v[order].numpy(), color=["tab:red" if x >= 0 else "tab:blue" for x in v[order].tolist()])
    ax.set_xticks(range(k))
    ax.set_xticklabels([str(i) for i in order.tolist()], fontsize=7, rotation=90)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("unit")
    fig.tight_layout()
    return fig


def interval_metrics(rows: list[dict]) -> list[str]:
    """The metrics ``m`` of a table whose first row holds both ``m`` (a number) and ``m_ci`` (a
    ``[low, high]`` pair), e.g. ``["S", "ST"]`` for the rows of
    :meth:`~lightning_causal.causal.sensitivity.sobol.SobolResult.to_rows`.

    Examples:
        >>> interval_metrics([{"group": "0", "S": 0.2, "S_ci": [0.1, 0.3], "n": 5}])
        ['S']
    """
    if not rows:
        return []
    row = rows[0]
    return [k for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and isinstance(row.get(f"{k}_ci"), (list, tuple)) and len(row[f"{k}_ci"]) == 2]


def interval_bar_figure(rows: list[dict], title: str, label: str = "group", top: int = 32) -> Figure:
    """Grouped bars of every :func:`interval_metrics` metric of the first ``top`` rows (in table
    order), each with its confidence interval as an error bar; rows labelled by ``row[label]``.

    Examples:
        >>> rows = [{"group": "3", "S": 0.5, "S_ci": [0.4, 0.6], "ST": 0.7, "ST_ci": [0.6, 0.8]}]
        >>> fig = interval_bar_figure(rows, "sobol indices")
        >>> [len(c) for c in fig.axes[0].containers]  # S and ST bars (+ their error bars)
        [1, 3, 1, 3]
    """
    metrics = interval_metrics(rows)
    rows = rows[:top]
    k, width = len(rows), 0.8 / max(1, len(metrics))
    fig = Figure(figsize=(max(4.0, 0.35 * k * max(1, len(metrics)) + 1.5), 3.0))
    ax = fig.subplots()
    for i, m in enumerate(metrics):
        values = [float(r[m]) for r in rows]
        low = [v - float(r[f"{m}_ci"][0]) for v, r in zip(values, rows)]
        high = [float(r[f"{m}_ci"][1]) - v for v, r in zip(values, rows)]
        x = [j + (i - (len(metrics) - 1) / 2) * width for j in range(k)]
        ax.bar(x, values, width, label=m)
        ax.errorbar(x, values, yerr=[low, high], fmt="none", ecolor="black", capsize=2, linewidth=0.8)
    ax.set_xticks(range(k))
    ax.set_xticklabels([str(r.get(label, j)) for j, r in enumerate(rows)], fontsize=7, rotation=90)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(label)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def curves_figure(curves: dict[str, list[float]], title: str) -> Figure:
    """Line plot of ``curves`` (key ``"x"`` holds the abscissa, every other key a series)."""
    x = curves.get("x")
    fig = Figure(figsize=(4.5, 3.0))
    ax = fig.subplots()
    for name, ys in curves.items():
        if name != "x":
            ax.plot(x if x is not None else range(len(ys)), ys, label=name)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
