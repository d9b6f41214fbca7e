"""Charts of audit values: bars of the largest values (first-order estimates hatched), horizontal
bars with confidence intervals, and curves with reference levels; plain ``Figure`` objects (no
pyplot state)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from lightning_causal.reporting.figure_style import (
    MAGNITUDE,
    NEG,
    POS,
    WIDTH,
    largest_first,
    short_labels,
    title_lines,
)

__all__ = ["MAX_TICK_LABELS", "bar_figure", "curves_figure", "interval_bar_figure", "interval_metrics"]

#: the most abscissa values :func:`curves_figure` labels one by one (a 5.2-inch axis holds about this many slanted)
MAX_TICK_LABELS = 16


def bar_figure(
    values: Tensor, title: str, top: int = 16, labels: Sequence[str] | None = None, *, value_label: str = "importance",
    item_label: str = "unit", estimated: Sequence[bool] | None = None,
) -> Figure:
    """Bars of the ``top`` values of largest magnitude, largest first (equal magnitudes in index order), labelled by ``labels[i]``
    (default the index ``i``), the x-axis label saying how many of how many where some are left out (``unit (the 16
    largest of 32)``); red positive, blue negative where some value is negative, one neutral colour where none is
    (magnitudes such as a mean ``|effect|`` have no direction). Landscape (about 2:1), the shape of a TensorBoard image
    card. ``estimated[i]`` marks value ``i`` as a first-order estimate (an
    attribution screen's unscreened units): drawn light and hatched, with a legend ("exact (k of
    U units)" / "first-order estimate") in the upper corner where it covers no bar (where neither is free, the y axis
    raised above the bars under it); when every value is an estimate the y-label says so.

    Args:
        values: one value per item ``[U]`` (any shape, flattened).
        title: the figure's title.
        top: how many values are drawn.
        labels: one label per value; ``None``: the indices.
        value_label: the y-axis label.
        item_label: what an item is, for the legend (``"unit"``: ``k of U units``).
        estimated: one flag per value, as above; ``None``: all exact.

    Examples:
        >>> import torch
        >>> fig = bar_figure(torch.tensor([0.1, -0.5, 0.3]), "conv1", top=2, labels=["a", "b", "c"])
        >>> [t.get_text() for t in fig.axes[0].get_xticklabels()], fig.axes[0].get_ylabel()
        (['b', 'c'], 'importance')
        >>> fig = bar_figure(torch.tensor([0.1, -0.5, 0.3]), "conv1", estimated=[True, False, True])
        >>> [p.get_hatch() for p in fig.axes[0].patches], [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ([None, '///', '///'], ['exact (1 of 3 units)', 'first-order estimate'])
    """
    v = values.detach().float().cpu().reshape(-1)
    k = min(top, v.numel())
    order = largest_first(v.abs(), k)  # ties (bars of equal height) in index order
    names = [str(labels[i]) if labels is not None else str(i) for i in order]
    guess = [bool(e) for e in estimated] if estimated is not None else [False] * v.numel()
    # a layer's path past the card's width ("unit_importance: model.bert.encoder.layer.0.attention.self.query") was cut
    # at the figure's edge, "...self.que": the title in lines that fit, the figure as much higher
    lines = [line for given in title.split("\n") for line in title_lines(given, int(WIDTH * 11))]  # its own lines kept
    fig = Figure(figsize=(WIDTH, 2.7 + 0.25 * (len(lines) - 1 - title.count("\n"))))
    ax = fig.subplots()
    signed = bool((v < 0).any())  # magnitudes (a mean |effect|) have no direction to colour
    bars = ax.bar(range(k), [float(v[i]) for i in order],
                  color=[(POS if float(v[i]) >= 0 else NEG) if signed else MAGNITUDE for i in order])
    for bar, i in zip(bars, order):
        if guess[i]:  # a first-order estimate, not an intervention's effect
            bar.set_alpha(0.45)
            bar.set_hatch("///")
    ax.set_xticks(range(k))
    ax.set_xticklabels(names, fontsize=9)
    ax.axhline(0.0, color="0.3", linewidth=0.6)
    ax.set_title("\n".join(lines), fontsize=11)
    if any(guess):
        _estimate_legend(ax, guess, [guess[i] for i in order], item_label)
        value_label = f"{value_label}\n(first-order estimate)" if all(guess) else value_label
    ax.set_ylabel(value_label, fontsize=10)
    # a layer of 32 filters drawn as its 16 largest bars read as a layer of 16: the label says how many of how many
    ax.set_xlabel(item_label if k == v.numel() else f"{item_label} (the {k} largest of {v.numel()})", fontsize=10)
    ax.tick_params(axis="y", labelsize=9)
    fig.tight_layout()
    # 16 labels of 3 digits (a layer of 100-999 units) ran together level ("109101103..."), and so did 5 of 7 W's
    slant_if_colliding(ax, list(range(k)), grow=0.5)
    if any(guess) and _clear_of_bars(ax, bars):  # the y axis grew: its tick labels may be wider
        fig.tight_layout()
    return fig


#: the least room between two level tick labels, in pixels (about a space and a half of the 9-point font)
LABEL_GAP_PX = 4.0


@functools.lru_cache(maxsize=4)
def _measurer(dpi: float) -> RendererAgg:
    """A renderer that measures text at ``dpi`` (nothing is drawn)."""
    return RendererAgg(1, 1, dpi)


def slant_if_colliding(ax: Any, positions: Sequence[float], grow: float = 0.0) -> bool:
    """Slant ``ax``'s x tick labels (35 degrees, right-aligned) where, level, they would run together
    (:func:`labels_collide`, on the laid-out axes), the figure ``grow`` inches higher for them, laid out again.

    Args:
        ax: the laid-out axes, its tick labels set level.
        positions: the tick labels' x positions, in data units.
        grow: inches the figure grows by where they slant.

    Returns:
        Whether they slant.
    """
    ticks = ax.get_xticklabels()
    if not labels_collide(ax, positions, [t.get_text() for t in ticks], ticks[0].get_fontsize() if ticks else 9):
        return False
    for t in ticks:
        t.set_rotation(35)
        t.set_horizontalalignment("right")
    fig = ax.figure
    fig.set_size_inches(fig.get_figwidth(), fig.get_figheight() + grow)
    fig.tight_layout()
    return True


def labels_collide(ax: Any, positions: Sequence[float], names: Sequence[str], fontsize: float = 9) -> bool:
    """Whether the tick labels ``names`` at ``positions`` on ``ax``'s x axis, drawn level, would leave less than
    :data:`LABEL_GAP_PX` between neighbours: their widths measured in the figure's font at its dpi (a ``W`` is three
    times an ``i``, so that a count of characters let 5 labels of 7 W's overlap level), the axis's pixels per data
    unit from its limits and its width as laid out.

    Args:
        ax: the axes, its data plotted (its x limits are read).
        positions: the labels' x positions, in data units.
        names: the labels.
        fontsize: their size in points.

    Examples:
        >>> fig = Figure(figsize=(WIDTH, 2.7))
        >>> ax = fig.subplots()
        >>> _ = ax.bar(range(5), [1.0] * 5)
        >>> labels_collide(ax, range(5), ["WWWWWWW"] * 5), labels_collide(ax, range(5), ["iiiiiii"] * 5)
        (True, False)
    """
    fig = ax.figure
    prop = FontProperties(size=fontsize)
    widths = [_measurer(fig.dpi).get_text_width_height_descent(n, prop, ismath=False)[0] for n in names]
    lo, hi = ax.get_xlim()
    per_unit = ax.get_position().width * fig.get_figwidth() * fig.dpi / max(abs(hi - lo), 1e-12)
    return any(abs(b - a) * per_unit < (wa + wb) / 2 + LABEL_GAP_PX
               for a, b, wa, wb in zip(positions, positions[1:], widths, widths[1:]))


def _clear_of_bars(ax: Any, bars: Any) -> bool:
    """Put the legend of ``ax`` in the upper corner (right, else left) where it covers no bar of ``bars``: where a bar
    under it reaches its box in both (bars of equal height; the tallest positive ones on the right of bars of largest
    magnitude first where the negative ones are larger), the y axis is raised until the bars under the right corner's
    box end below it (its box keeps its height in pixels; its share of the axes' height ``f`` fixes the top ``hi'``:
    ``top + margin = hi' - f (hi' - lo)``). Returns whether the axis was raised."""
    legend = ax.get_legend()
    lo, hi = ax.get_ylim()
    frame = ax.get_window_extent()
    need = {}
    for loc in ("upper right", "upper left"):
        legend.set_loc(loc)
        box = legend.get_window_extent()
        under = [b for b in bars if b.get_window_extent().x1 > box.x0 and b.get_window_extent().x0 < box.x1]
        top = max([max(b.get_y(), b.get_y() + b.get_height()) for b in under], default=lo)
        f = (frame.y1 - box.y0) / frame.height  # the box's share of the axes' height, from their top
        need[loc] = (top + 0.02 * (hi - lo) - f * lo) / (1 - f) if ax.transData.transform((0, top))[1] > box.y0 else hi
    loc = min(need, key=lambda k: (need[k], k != "upper right"))  # the right corner unless the left needs less
    legend.set_loc(loc)
    if need[loc] > hi:
        ax.set_ylim(lo, need[loc])
        return True
    return False


def _estimate_legend(ax: Any, estimated: list[bool], drawn: list[bool], item_label: str) -> None:
    """The legend of a bar chart mixing exact values and first-order estimates: an entry per kind
    of bar drawn; the exact entry counts the exact values among all of them."""
    from matplotlib.patches import Patch

    exact = len(estimated) - sum(estimated)
    handles = []
    if not all(drawn):
        handles.append(Patch(facecolor="0.35", label=f"exact ({exact} of {len(estimated)} {item_label}s)"))
    if any(drawn):
        handles.append(Patch(facecolor="0.35", alpha=0.45, hatch="///", label="first-order estimate"))
    ax.legend(handles=handles, fontsize=9, loc="upper right", frameon=False)


def interval_metrics(rows: list[dict]) -> list[str]:
    """The metrics ``m`` of a table whose first row holds both ``m`` (a number) and ``m_ci`` (a
    ``[low, high]`` pair), e.g. ``["S", "ST"]`` for the rows of
    :meth:`~lightning_causal.causal.sensitivity.sobol.SobolResult.to_rows`.

    Args:
        rows: the table's rows (dicts).

    Examples:
        >>> interval_metrics([{"group": "0", "S": 0.2, "S_ci": [0.1, 0.3], "n": 5}])
        ['S']
    """
    if not rows:
        return []
    row = rows[0]
    return [k for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and isinstance(row.get(f"{k}_ci"), (list, tuple)) and len(row[f"{k}_ci"]) == 2]


#: inches an interval figure grows by for each row more of its legend (metrics' names wider than the figure)
LEGEND_ROW = 0.18


def interval_bar_figure(rows: list[dict], title: str, label: str = "group", top: int = 8, *, xlabel: str = "index",
                        ylabel: str | None = None, label_chars: int = 24) -> Figure:
    """Grouped horizontal bars of every :func:`interval_metrics` metric of the first ``top`` rows
    (first row on top), each with its confidence interval as an error bar; rows labelled by
    ``row[label]``. When rows are left out the title says so (``top 8 of 9``). A legend names the metrics where
    there are several, in a row above the axes, where it covers no bar or interval (in as many rows as names wider
    than the figure need, each :data:`LEGEND_ROW` more of height).

    Args:
        rows: the table's rows (dicts), as in :func:`interval_metrics`.
        title: the figure's title.
        label: the key of each row's label.
        top: how many rows are drawn.
        xlabel: the x-axis label.
        ylabel: the y-axis label; ``None``: ``label`` (``"feature"`` where the rows hold feature names).
        label_chars: the most characters of a row's label (longer ones are cut, kept distinct: :func:`short_labels`).

    Examples:
        >>> rows = [{"group": "3", "S": 0.5, "S_ci": [0.4, 0.6], "ST": 0.7, "ST_ci": [0.6, 0.8]}]
        >>> fig = interval_bar_figure(rows, "sobol indices")
        >>> [len(c) for c in fig.axes[0].containers]  # S and ST bars (+ their error bars)
        [1, 3, 1, 3]
    """
    metrics = interval_metrics(rows)
    if len(rows) > top:  # a group missing from the figure must not read as one never analysed
        title = f"{title} (top {top} of {len(rows)})"
    rows = rows[:top]
    k, width = len(rows), 0.8 / max(1, len(metrics))
    lines = title_lines(title, int(WIDTH * 11))
    # rows of 0.22 in for S and ST (0.28 made 8 rows and a two-line title 369 pixels high, shown at 0.58 in a TensorBoard
    # card of about 400 x 215): 325 pixels, at two thirds
    # the legend's row above the axes: added to a figure of few rows; one of more lends it from its axes (8 rows under a
    # two-line title keep to the height above, which a TensorBoard card shows at two thirds)
    legend_row = 0.25 if len(metrics) > 1 and k <= 4 else 0.0
    fig = Figure(figsize=(WIDTH, 1.2 + legend_row + 0.25 * (len(lines) - 1) + (0.07 + 0.075 * len(metrics)) * k))
    ax = fig.subplots()
    position = [k - 1 - j for j in range(k)]  # first row on top
    for i, m in enumerate(metrics):
        values = [float(r[m]) for r in rows]
        low = [v - float(r[f"{m}_ci"][0]) for v, r in zip(values, rows)]
        high = [float(r[f"{m}_ci"][1]) - v for v, r in zip(values, rows)]
        y = [p - (i - (len(metrics) - 1) / 2) * width for p in position]
        ax.barh(y, values, width, label=m)
        ax.errorbar(values, y, xerr=[low, high], fmt="none", ecolor="black", capsize=2, linewidth=0.8)
    ax.set_yticks(position)
    ax.set_yticklabels(short_labels([str(r.get(label, j)) for j, r in enumerate(rows)], label_chars), fontsize=9)
    ax.axvline(0.0, color="0.3", linewidth=0.6)
    fig.suptitle("\n".join(lines), fontsize=11)  # centred on the figure: the row labels narrow the axes
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(label if ylabel is None else ylabel, fontsize=10)
    if len(metrics) > 1:  # one metric: the x axis names it
        # above the axes, in one row: inside them ("best") the box covered error bars' caps (4 groups of even indices)
        # as many columns as fit the figure's width: one row ran past its left edge and cut the first name off (four
        # rates, "true_positive_rate"...); each row more makes the figure taller by one
        for ncol in range(len(metrics), 0, -1):
            legend = ax.legend(fontsize=9, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=ncol, frameon=False,
                               borderaxespad=0.2, handlelength=1.2, columnspacing=1.0)
            if legend.get_window_extent().width <= 0.95 * fig.bbox.width:
                break
        fig.set_size_inches(WIDTH, fig.get_figheight() + LEGEND_ROW * (math.ceil(len(metrics) / ncol) - 1))
    fig.tight_layout()
    return fig


def curves_figure(
    curves: dict[str, list[float] | float], title: str, xlabel: str = "x", ylabel: str = "value",
    *,
    xticklabels: Sequence[str] | None = None,
) -> Figure:
    """Line plot of ``curves`` (key ``"x"`` holds the abscissa, every other key a series of
    values, or one number: a reference level such as a rule's bound, drawn as a grey dashed
    line), with axis labels, markers for short series and ``xticklabels`` at the abscissa (e.g.
    class names, cut to 24 characters and kept apart); a short whole-number abscissa (classes, epochs) gets a tick
    at each value and none between. More than :data:`MAX_TICK_LABELS` values (a curve over 1000 classes) keep
    matplotlib's few numbered ticks, the x-axis label saying they are indices: a label per value was a smear that
    took 5 s to lay out.

    Args:
        curves: the series, as above.
        title: the figure's title.
        xlabel: the x-axis label.
        ylabel: the y-axis label.
        xticklabels: one label per abscissa value; ``None``: the values.

    Examples:
        >>> fig = curves_figure({"x": [0, 1], "anomaly": [0.5, 3.0], "bound": 2.0}, "anomaly index", "class", "index", xticklabels=["cat", "dog"])
        >>> fig.axes[0].get_xlabel(), [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ('class', ['cat', 'dog'])
        >>> [line.get_linestyle() for line in fig.axes[0].get_lines()]
        ['-', '--']
        >>> fig = curves_figure({"x": list(range(1000)), "a": [0.0] * 1000}, "t", "class", xticklabels=[str(c) for c in range(1000)])
        >>> fig.axes[0].get_xlabel(), len(fig.axes[0].get_xticks()) < 20
        ('class (index)', True)
    """
    x = curves.get("x")
    fig = Figure(figsize=(WIDTH, 3.4))
    ax = fig.subplots()
    for name, ys in curves.items():
        if name == "x":
            continue
        if isinstance(ys, (int, float)):  # a reference level (a rule's bound), not a measurement
            ax.axhline(float(ys), label=name, color="0.4", linestyle="--", linewidth=1.0)
            continue
        xs = x if x is not None and len(x) == len(ys) else list(range(len(ys)))
        ax.plot(xs, ys, label=name, marker="o" if len(ys) <= 32 else None, markersize=3)
    if xticklabels is not None and x is not None and len(xticklabels) == len(x) and len(x) > MAX_TICK_LABELS:
        xlabel = f"{xlabel} (index)"  # matplotlib's numbered ticks, whole numbers: the labels would not fit
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    elif xticklabels is not None and x is not None and len(xticklabels) == len(x):
        labels = short_labels([str(t) for t in xticklabels])
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, fontsize=9)
    elif x is not None and 0 < len(x) <= 32 and all(float(v).is_integer() for v in x):  # classes, epochs: whole ticks only
        ax.set_xticks([int(v) for v in x])
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.legend(fontsize=9)
    fig.tight_layout()
    if xticklabels is not None and x is not None and len(xticklabels) == len(x) <= MAX_TICK_LABELS:
        slant_if_colliding(ax, [float(v) for v in x])
    return fig
