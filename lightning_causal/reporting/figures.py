"""Matplotlib figures of audit results: plain ``Figure`` objects (no pyplot state, the backend is never switched).

Sized for TensorBoard's image cards, which fit an image into a landscape box of about 380 x 200
pixels: figures about 520 pixels wide (matplotlib's 100 dpi) and about half as high, a handful of
bars each, labels of at least 9 points, and axis labels on every plot.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from typing import Any

from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from torch import Tensor

__all__ = [
    "heatmap_row", "map_scale", "bar_figure", "counterfactual_figure", "interval_bar_figure", "interval_metrics", "curves_figure",
    "image_grid_figure", "largest_change", "short_label", "short_labels", "show_input", "strongest_channel", "title_lines",
    "to_image",
]

WIDTH = 5.2  # inches at 100 dpi: 520 pixels, about the width of a TensorBoard image card
_POS, _NEG = "tab:red", "tab:blue"


def to_image(x: Tensor) -> Tensor:
    """A 2-D image of one sample ``[C, H, W]`` / ``[H, W]`` (channels averaged)."""
    x = x.detach().float().cpu()
    return x.mean(0) if x.dim() == 3 else x


def largest_change(d: Tensor) -> Tensor:
    """A 2-D image of a signed change ``[C, H, W]`` / ``[H, W]``: per pixel the channel change of
    largest magnitude, with its sign (a red bar turned magenta shows its blue change in full; the
    channels' mean would show a third of it, and opposite changes of two channels would cancel).

    Examples:
        >>> import torch
        >>> d = torch.zeros(3, 1, 2)
        >>> d[2, 0, 0], d[0, 0, 1], d[1, 0, 1] = 1.0, -0.5, 0.5
        >>> largest_change(d).tolist()
        [[1.0, -0.5]]
    """
    d = d.detach().float().cpu()
    if d.dim() != 3:
        return d
    return strongest_channel(d, 0)


def strongest_channel(maps: Tensor, dim: int) -> Tensor:
    """``maps`` without dimension ``dim`` (the colour channels): at each position the value of the
    channel of largest magnitude, with its sign. What an RGB attribution or effect map draws: the
    channels' mean diluted a group of one channel to a third and let opposite groups cancel (a red
    group at 0.9 over a blue one at -0.6 drew 0.1); for a map equal across channels (a patch
    group) it is that value.

    Examples:
        >>> import torch
        >>> strongest_channel(torch.tensor([[[0.9]], [[0.0]], [[-0.6]]]), 0).tolist()
        [[0.8999999761581421]]
    """
    return maps.gather(dim, maps.abs().argmax(dim, keepdim=True)).squeeze(dim)


def show_input(ax: Any, x: Tensor) -> None:
    """Draw one input sample on ``ax``: ``[3, H, W]`` in colour, its range stretched to [0, 1] (the
    colour is often what a class is about), any other ``[C, H, W]`` / ``[H, W]`` in grey with the
    channels averaged; nearest-neighbour upscaling.

    Examples:
        >>> import torch
        >>> ax = Figure().subplots()
        >>> show_input(ax, torch.stack([torch.ones(2, 2), torch.zeros(2, 2), -torch.ones(2, 2)]))
        >>> ax.get_images()[0].get_array()[0, 0].tolist()  # red, no green, no blue
        [1.0, 0.5, 0.0]
    """
    x = x.detach().float().cpu()
    if x.dim() == 3 and x.shape[0] == 3:
        img = x.permute(1, 2, 0)
        lo, hi = float(img.min()), float(img.max())
        ax.imshow(((img - lo) / (hi - lo) if hi > lo else img * 0).numpy(), interpolation="nearest")
    else:
        ax.imshow(to_image(x).numpy(), cmap="gray", interpolation="nearest")


def short_label(text: str, limit: int = 24) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (axis labels of long feature names;
    the full names are in the JSON report and the text card).

    Examples:
        >>> short_label("capital_gain_last_year_in_thousands", 16)
        'capital_gain_la…'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_labels(texts: Sequence[str], limit: int = 24) -> list[str]:
    """Axis labels of at most ``limit`` characters that stay distinct: each cut at its end
    (:func:`short_label`); if two coincide, cut in the middle (start … end); then without the start
    the long ones share (``"…00_monthly_bal…"``); as a last resort numbered by position.

    Examples:
        >>> short_labels(["age", "income_per_household_member_2019", "income_per_household_member_2020"], 16)
        ['age', 'income_…ber_2019', 'income_…ber_2020']
    """
    texts = [str(t) for t in texts]
    ends = [short_label(t, limit) for t in texts]
    if len(set(ends)) == len(ends):
        return ends
    head = (limit - 1) // 2
    middles = [t if len(t) <= limit else t[:head] + "…" + t[len(t) - (limit - 1 - head):] for t in texts]
    if len(set(middles)) == len(middles):
        return middles
    common = len(os.path.commonprefix([t for t in texts if len(t) > limit]))  # names that differ after a long shared start
    tails = [t if len(t) <= limit else short_label("…" + t[common:], limit) for t in texts]
    if len(set(tails)) == len(tails):
        return tails
    return [t if len(t) <= limit else short_label(f"{i}: {t}", limit) for i, t in enumerate(texts)]


def title_lines(title: str, width: int) -> list[str]:
    """``title`` in lines of at most ``width`` characters: one line if it fits, else broken after
    its last ``": "`` when both parts fit (``"<audit>, sample 0 (label 3):"`` / ``"explains class 3"``),
    else wrapped at spaces.

    Examples:
        >>> title_lines("ie, sample 0 (label 'pos'): explains class 'neg'", 30)
        ["ie, sample 0 (label 'pos'):", "explains class 'neg'"]
    """
    if len(title) <= width:
        return [title]
    head, sep, tail = title.rpartition(": ")
    if sep and len(head) + 1 <= width and len(tail) <= width:
        return [head + ":", tail]
    return textwrap.wrap(title, width)


MAX_COLUMNS = 4  # panels per row of a heatmap figure: more would shrink each map below legibility in a TensorBoard card


def map_scale(values: Tensor, limit: float | None = None) -> tuple[str, float, float]:
    """The colour map and range of an attribution map: a signed map (any value below 0) on the
    diverging ``RdBu_r`` centred at 0, ``[-v, v]``; an unsigned one (every value >= 0, such as
    Saliency's |gradient|) on the sequential ``Reds``, ``[0, v]`` (white at 0 in both, so half of a
    diverging scale is not spent on values that cannot occur); ``v = limit`` or the max |value|.

    Examples:
        >>> import torch
        >>> map_scale(torch.tensor([-1.0, 0.5])), map_scale(torch.tensor([0.0, 2.0])), map_scale(torch.zeros(2))
        (('RdBu_r', -1.0, 1.0), ('Reds', 0.0, 2.0), ('Reds', 0.0, 1.0))
    """
    v = values.detach().float()
    lim = limit or float(v.abs().max()) or 1.0
    return ("RdBu_r", -lim, lim) if bool((v < 0).any()) else ("Reds", 0.0, lim)


def heatmap_row(
    sample: Tensor, maps: dict[str, Tensor], vmax: dict[str, float] | None = None, title: str | None = None,
    *, signed: dict[str, bool] | None = None, note: str | None = None,
) -> Figure:
    """One probe sample: ``input | map_1 | map_2 | ...``, wrapped after :data:`MAX_COLUMNS` panels
    (input, causal and four Captum methods: two rows of panels, each still readable in a
    TensorBoard card); signed maps on a symmetric diverging scale, unsigned maps on a sequential
    scale from 0 (:func:`map_scale`; ``signed[name]`` decides, default: the map has a negative
    value), never clipped, one colour scale per map (``vmax[name]``, default the map's own max
    |value|). Panels keep the image's aspect ratio; ``title`` above (e.g. which class the maps
    explain), ``note`` in one small line below (e.g. what the colours of a signed map mean).

    Examples:
        >>> import torch
        >>> fig = heatmap_row(torch.rand(1, 8, 8), {"causal": torch.randn(1, 8, 8)}, title="explains class 3")
        >>> len(fig.axes), fig._suptitle.get_text()  # input, map, colour bar
        (3, 'explains class 3')
    """
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    n = 1 + len(maps)
    rows = -(-n // MAX_COLUMNS)
    cols = -(-n // rows)
    h, w = int(sample.shape[-2]), int(sample.shape[-1])
    cell = 1.45  # inches of image per panel along its longer side (a colour bar beside each map)
    height = cell * min(h / w, 1.0) + 0.45  # the panel's title above
    width = (cell * min(w / h, 1.0) + 0.45) * cols + 0.4
    lines = title_lines(title, max(16, int(width * 12))) if title else []  # about 12 characters of 11 pt per inch
    # the note wrapped to the figure's width (about 16 characters of 8 pt per inch): one line was cut at both
    # edges of a narrow figure (a map of [C, 1], a sequence of one step)
    notes = textwrap.wrap(note, max(16, int(width * 16))) if note else []
    below = 0.05 + 0.15 * len(notes) if notes else 0.0
    fig = Figure(figsize=(width, 0.25 + rows * height + 0.3 * len(lines) + below))
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[n:]:
        fig.delaxes(ax)
    axes = axes[:n]
    show_input(axes[0], sample)
    axes[0].set_title("input", fontsize=10)
    for ax, (name, m) in zip(axes[1:], maps.items()):
        img = largest_change(m)  # [C, H, W]: each pixel's channel of largest |value|
        cmap, lo, hi = map_scale(img, (vmax or {}).get(name))
        if signed is not None and name in signed:
            cmap, lo = ("RdBu_r", -hi) if signed[name] else ("Reds", 0.0)
        im = ax.imshow(img.numpy(), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(name, fontsize=10 if len(name) <= 16 else 8)
        bar_ax = make_axes_locatable(ax).append_axes("right", size="6%", pad=0.06)  # as tall as the image, whatever its aspect
        fig.colorbar(im, cax=bar_ax).ax.tick_params(labelsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if lines:
        fig.suptitle("\n".join(lines), fontsize=11)
    if notes:
        fig.text(0.5, 0.02, "\n".join(notes), ha="center", va="bottom", fontsize=8, color="0.3")
    fig.tight_layout(rect=(0.0, below / fig.get_figheight(), 1.0, 1.0))
    return fig


def bar_figure(
    values: Tensor, title: str, top: int = 16, labels: Sequence[str] | None = None, *, value_label: str = "importance",
    item_label: str = "unit", estimated: Sequence[bool] | None = None,
) -> Figure:
    """Bars of the ``top`` values of largest magnitude, largest first, labelled by ``labels[i]``
    (default the index ``i``); red positive, blue negative. Landscape (about 2:1), the shape of a
    TensorBoard image card. ``estimated[i]`` marks value ``i`` as a first-order estimate (an
    attribution screen's unscreened units): drawn light and hatched, with a legend ("exact (k of
    U units)" / "first-order estimate"); when every value is an estimate the y-label says so.

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
    order = v.abs().topk(k).indices.tolist()
    names = [str(labels[i]) if labels is not None else str(i) for i in order]
    slanted = max(len(n) for n in names) * k > 48
    guess = [bool(e) for e in estimated] if estimated is not None else [False] * v.numel()
    fig = Figure(figsize=(WIDTH, 2.7 + (0.5 if slanted else 0.0)))
    ax = fig.subplots()
    bars = ax.bar(range(k), [float(v[i]) for i in order], color=[_POS if float(v[i]) >= 0 else _NEG for i in order])
    for bar, i in zip(bars, order):
        if guess[i]:  # a first-order estimate, not an intervention's effect
            bar.set_alpha(0.45)
            bar.set_hatch("///")
    ax.set_xticks(range(k))
    ax.set_xticklabels(names, fontsize=9, rotation=35 if slanted else 0, ha="right" if slanted else "center")
    ax.axhline(0.0, color="0.3", linewidth=0.6)
    ax.set_title(title, fontsize=11)
    if any(guess):
        _estimate_legend(ax, guess, [guess[i] for i in order], item_label)
        value_label = f"{value_label}\n(first-order estimate)" if all(guess) else value_label
    ax.set_ylabel(value_label, fontsize=10)
    ax.set_xlabel(item_label, fontsize=10)
    ax.tick_params(axis="y", labelsize=9)
    fig.tight_layout()
    return fig


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

    Examples:
        >>> interval_metrics([{"group": "0", "S": 0.2, "S_ci": [0.1, 0.3], "n": 5}])
        ['S']
    """
    if not rows:
        return []
    row = rows[0]
    return [k for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and isinstance(row.get(f"{k}_ci"), (list, tuple)) and len(row[f"{k}_ci"]) == 2]


def interval_bar_figure(rows: list[dict], title: str, label: str = "group", top: int = 8, *, xlabel: str = "index") -> Figure:
    """Grouped horizontal bars of every :func:`interval_metrics` metric of the first ``top`` rows
    (first row on top), each with its confidence interval as an error bar; rows labelled by
    ``row[label]``. When rows are left out the title says so (``top 8 of 9``).

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
    fig = Figure(figsize=(WIDTH, 1.2 + 0.25 * (len(lines) - 1) + (0.1 + 0.09 * len(metrics)) * k))
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
    ax.set_yticklabels(short_labels([str(r.get(label, j)) for j, r in enumerate(rows)]), fontsize=9)
    ax.axvline(0.0, color="0.3", linewidth=0.6)
    fig.suptitle("\n".join(lines), fontsize=11)  # centred on the figure: the row labels narrow the axes
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(label, fontsize=10)
    ax.legend(fontsize=9, loc="best")
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
    class names); a short whole-number abscissa (classes, epochs) gets a tick at each value and
    none between.

    Examples:
        >>> fig = curves_figure({"x": [0, 1], "anomaly": [0.5, 3.0], "bound": 2.0}, "anomaly index", "class", "index", xticklabels=["cat", "dog"])
        >>> fig.axes[0].get_xlabel(), [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ('class', ['cat', 'dog'])
        >>> [line.get_linestyle() for line in fig.axes[0].get_lines()]
        ['-', '--']
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
    if xticklabels is not None and x is not None and len(xticklabels) == len(x):
        slanted = len(x) * max(len(str(t)) for t in xticklabels) > 40
        ax.set_xticks(list(x))
        ax.set_xticklabels([str(t) for t in xticklabels], fontsize=9, rotation=35 if slanted else 0, ha="right" if slanted else "center")
    elif x is not None and 0 < len(x) <= 32 and all(float(v).is_integer() for v in x):  # classes, epochs: whole ticks only
        ax.set_xticks([int(v) for v in x])
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def image_grid_figure(
    images: dict[str, Tensor], labels: Sequence[str] | None = None, title: str | None = None,
    highlight: Sequence[int] = (), *, max_columns: int = 10,
) -> Figure:
    """Images upscaled (nearest neighbour, no smoothing) in a grid: one row per entry of ``images``
    (each ``[K, C, H, W]`` or ``[K, H, W]``, channels averaged unless RGB), one column per item
    labelled ``labels[k]`` (e.g. the class whose reversed trigger it is); ``highlight`` frames
    items in red (flagged classes).

    Examples:
        >>> import torch
        >>> fig = image_grid_figure({"mask": torch.rand(3, 1, 8, 8), "pattern": torch.rand(3, 1, 8, 8)}, ["a", "b", "c"], highlight=[1])
        >>> len(fig.axes), fig.axes[1].get_title()
        (6, 'b')
    """
    names = list(images)
    k = min(max_columns, min(int(v.shape[0]) for v in images.values()))
    width = 1.0 + 0.62 * k
    lines = title_lines(title, max(12, int(width * 11))) if title else []  # a 3-class title ran past both edges
    fig = Figure(figsize=(width, 0.45 + 0.78 * len(names) + 0.3 * len(lines)))
    axes = fig.subplots(len(names), k, squeeze=False)
    for r, name in enumerate(names):
        for c in range(k):
            ax = axes[r][c]
            show_input(ax, images[name][c])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(str(labels[c]) if labels is not None else f"#{c}", fontsize=9,
                             color=_POS if c in highlight else "black")
            if c in highlight:
                for spine in ax.spines.values():
                    spine.set_edgecolor(_POS)
                    spine.set_linewidth(2.0)
        axes[r][0].set_ylabel(name, fontsize=10, rotation=0, ha="right", va="center")
    if lines:
        fig.suptitle("\n".join(lines), fontsize=11)
    fig.tight_layout(pad=0.4, h_pad=0.2, w_pad=0.2)
    return fig


def counterfactual_figure(
    panels: dict[str, Tensor], labels: Sequence[str], failed: Sequence[int] = (), title: str | None = None,
    *, sequence_axes: tuple[str, str] | None = None,
) -> Figure:
    """Counterfactual explanations, one column per sample titled ``labels[k]`` (e.g. ``"label 3 → pred
    5"`` / ``"→ cf 3 ✓"``), rows ``input`` and ``counterfactual`` in grey (or colour) on ``[0, 1]``
    and ``difference`` (counterfactual − input, ``[-1, 1]``; of colour images, each pixel's largest
    channel change, :func:`largest_change`) on a diverging scale centred at 0,
    all ``[K, C, H, W]`` as :func:`~lightning_causal.audits.counterfactual.split_triptych` gives
    them. Columns in ``failed`` (no counterfactual found) are framed and titled in red. Cells keep
    the images' aspect ratio. A univariate signal (one channel of one row, ``[K, 1, 1, T]``, from
    inputs ``[N, 1, T]``) is drawn as lines along ``T``: the input, the counterfactual over the
    input in grey, and the difference as bars on the same ``[-1, 1]`` scale (as a one-pixel-high
    image stretched to the cell it was an unreadable barcode). ``sequence_axes=(xlabel, row word)`` labels a
    sequence's panels (e.g. ``("time step", "feature")``): the bottom row's step axis, and of
    several channels the first column's rows (without it, no ticks: an image has no units).

    Examples:
        >>> import torch
        >>> x = torch.rand(2, 1, 8, 16)
        >>> fig = counterfactual_figure({"input": x, "counterfactual": x, "difference": x - x}, ["a", "b ✗"], failed=[1])
        >>> [ax.get_ylabel() for ax in fig.axes[:6:2]], fig.axes[1].title.get_color()
        (['input', 'counterfactual', 'difference\\n(cf − input)'], 'tab:red')
    """
    from matplotlib import colormaps

    k = len(labels)
    h, w = int(panels["input"].shape[-2]), int(panels["input"].shape[-1])
    cell = max(1.3, 0.075 * max(len(line) for label in labels for line in str(label).split("\n")))  # 9 pt titles
    lines = title_lines(title, int((1.2 + cell * k) * 11)) if title else []
    stretched = not 0.25 <= h / w <= 4.0  # a signal [F, T] or [T, F]: kept to scale it would be a sliver
    signal = h == 1 and panels["input"].dim() == 4 and panels["input"].shape[1] == 1  # [K, 1, 1, T]: lines
    diverging = colormaps["RdBu_r"]
    height = min(max(cell * h / w, 0.9), 2.0) if stretched else min(cell * h / w, 2.0)
    aspect = "auto" if stretched else None
    fig = Figure(figsize=(1.5 + cell * k, 0.75 + 0.3 * len(lines) + 3 * (height + 0.08)), layout="constrained")
    axes = fig.subplots(3, k, squeeze=False)
    for r, name in enumerate(("input", "counterfactual", "difference")):
        for c in range(k):
            ax, img = axes[r][c], panels[name][c].detach().float().cpu()
            if signal:
                _signal_cell(ax, name, img[0, 0], panels["input"][c, 0, 0].detach().float().cpu(), diverging)
            elif name == "difference":
                ax.imshow(largest_change(img).numpy(), cmap=diverging, vmin=-1.0, vmax=1.0, interpolation="nearest", aspect=aspect)
            elif img.dim() == 3 and img.shape[0] == 3:
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest", aspect=aspect)
            else:
                ax.imshow(to_image(img).numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", aspect=aspect)
            ax.set_xticks([])
            ax.set_yticks([])
            if sequence_axes is not None:
                _sequence_ticks(ax, r == 2, c == 0 and not signal, sequence_axes[0])
            if c in failed:
                for spine in ax.spines.values():
                    spine.set_edgecolor(_POS)
                    spine.set_linewidth(2.0)
        row = "difference\n(cf − input)" if name == "difference" else name
        axes[r][0].set_ylabel(f"{row}\n{sequence_axes[1]}" if sequence_axes is not None and not signal else row, fontsize=10)
    for c, label in enumerate(labels):
        axes[0][c].set_title(str(label), fontsize=9, color=_POS if c in failed else "black")
    scale = ScalarMappable(Normalize(-1.0, 1.0), diverging)
    bar = fig.colorbar(scale, ax=list(axes.ravel()), shrink=0.3, pad=0.02, anchor=(0.0, 0.0))  # every row keeps its width: the columns align
    bar.set_ticks([-1.0, 0.0, 1.0])
    bar.set_ticklabels(["−max", "0", "+max"], fontsize=8)
    bar.set_label("max: the column's\nlargest change", fontsize=8)  # each sample's difference on its own scale
    if lines:
        fig.suptitle("\n".join(lines), fontsize=11)
    return fig


def _sequence_ticks(ax: Any, steps: bool, rows: bool, xlabel: str) -> None:
    """Integer ticks of a sequence's counterfactual panel: along the steps (``steps``: the bottom row,
    labelled ``xlabel``) and along its channels or features (``rows``: the first column)."""
    from matplotlib.ticker import MaxNLocator

    if steps:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.set_xlabel(xlabel, fontsize=9)
    if rows:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.tick_params(labelsize=7)


def _signal_cell(ax: Any, name: str, values: Tensor, inputs: Tensor, cmap: Any) -> None:
    """One cell of a univariate signal's counterfactual: ``values`` ``[T]`` (on the sample's ``[0, 1]``
    scale; the difference on ``[-1, 1]``) as a line, the counterfactual over ``inputs`` in grey, the
    difference as bars in the colour bar's ends by sign (a small change stays visible)."""
    t = list(range(values.shape[-1]))
    if name == "difference":
        ax.bar(t, values.tolist(), width=1.0, color=[cmap(1.0) if float(v) >= 0 else cmap(0.0) for v in values])
        ax.axhline(0.0, color="0.6", linewidth=0.6)
        ax.set_ylim(-1.05, 1.05)
    else:
        if name == "counterfactual":
            ax.plot(t, inputs.tolist(), color="0.7", linewidth=1.0)
        ax.plot(t, values.tolist(), color="black", linewidth=1.0)
        ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.5, len(t) - 0.5)
