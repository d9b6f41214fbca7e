"""Attribution maps of sequences (``[N, C, T]`` channels first, ``[N, T, F]`` features last, ``[N, T]``):
which axis is time (``signal_layout``, ``sequence_layout``, ``ambiguous_sequence``) and per sample the
input over time with each map as bars (one channel) or as a channels x time heatmap."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import torch
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import PathPatch
from matplotlib.path import Path
from matplotlib.textpath import text_to_path
from matplotlib.ticker import FuncFormatter, Locator, MaxNLocator
from torch import Tensor

from lightning_causal.audits.group_regions import signal_layout
from lightning_causal.reporting.figure_style import (
    MAX_BARS,
    NEG,
    POS,
    WIDTH,
    not_finite_colours,
    not_finite_notes,
    short_label,
    step_bars,
    title_lines,
)
from lightning_causal.reporting.image_figures import map_scale, say_all_zero, say_no_finite
from lightning_causal.reporting.image_maps import map_tags
from lightning_causal.reporting.kept_figures import keep_figure, kept_figure, subplot_params
from lightning_causal.reporting.map_data import (
    SERIES_COLOURS,
    MapData,
    drawn_samples,
    global_title,
    map_limits,
    sample_title,
    sign_note,
)
from lightning_causal.reporting.not_finite_marks import RINGED, ring_not_finite

__all__ = ["ambiguous_sequence", "sequence_layout", "sequence_maps", "signal_layout"]


def sequence_layout(kind: str | None, inputs: Tensor) -> str:
    """How the drawn samples of ``inputs`` ``[N, T]`` / ``[N, A, B]`` hold time: ``"last"`` (features
    last ``[N, T, F]``: ``kind="sequence_features_last"``, or ``"sequence"`` where :func:`infer_kind`'s
    rule reads the shape as ``[N, T, F]``), else ``"first"`` (``[N, C, T]``; ``[N, T]`` is one channel).

    Args:
        kind: the figure kind (``"sequence"``, ``"sequence_features_last"`` or ``None``).
        inputs: the probe inputs.

    Examples:
        >>> import torch
        >>> sequence_layout("sequence", torch.zeros(2, 10, 8)), sequence_layout("sequence_features_last", torch.zeros(2, 10, 8))
        ('first', 'last')
        >>> sequence_layout("sequence", torch.zeros(2, 40, 2))
        'last'
    """
    if inputs.dim() != 3:
        return "first"
    if kind == "sequence_features_last":
        return "last"
    return "last" if signal_layout(inputs.shape[1:]) == "last" else "first"



def ambiguous_sequence(kind: str | None, inputs: Tensor) -> str | None:
    """A note for ``figure_kind="sequence"`` on ``[N, A, B]`` inputs whose shape does not say which
    axis is time (neither ``[N, C, T]`` with ``T >= 4C`` nor ``[N, T, F]`` with ``T >= 4F``): they are
    drawn channels first, and the note says how to draw them features last; ``None`` otherwise.

    Args:
        kind: the figure kind.
        inputs: the probe inputs.

    Examples:
        >>> import torch
        >>> ambiguous_sequence("sequence", torch.zeros(2, 10, 8)).split(" (")[0]
        "figure kind 'sequence' draws inputs of shape [2, 10, 8] channels first"
        >>> ambiguous_sequence("sequence", torch.zeros(2, 3, 40)) is None, ambiguous_sequence("sequence_features_last", torch.zeros(2, 10, 8)) is None
        (True, True)
    """
    if kind != "sequence" or inputs.dim() != 3 or signal_layout(inputs.shape[1:]) is not None:
        return None
    a, b = int(inputs.shape[1]), int(inputs.shape[2])
    return (f"figure kind 'sequence' draws inputs of shape {list(inputs.shape)} channels first ([N, C, T]: {a} channels "
            f"along {b} time steps); for features last ([N, T, F], as a batch_first recurrent layer takes them: {a} "
            f"time steps of {b} features) pass figure_kind='sequence_features_last'")



def sequence_maps(data: MapData, layout: str | None = None, *, reuse: bool = False) -> list[tuple[str, Figure]] | Iterator[tuple[str, Figure]]:
    """Per sample, the input over time and each map beside it. One channel: the input as a line
    (left axis) with each map as bars (right axis, red positive, blue negative, one scale per map:
    symmetric for a signed map, from 0 for a map without negative values). Several channels or
    features: the input's first four as lines (a heatmap of all of them beyond four), then each
    map as a heatmap with one row per channel or feature (so that the figure shows which feature
    carries an effect, and no effects of opposite sign cancel), on one scale per map shared by the
    samples: symmetric and diverging for a signed map, from 0 for a map without negative values
    (Saliency). A features-last sample ``[T, F]`` is drawn along ``T``: ``layout="last"``, or by
    default where :func:`sequence_layout` reads the shape so. Signed maps of a class's score
    (``meta["targets"]``) say below what red and blue mean. Entries the model is told to ignore
    (``data.unobserved``: an irregularly sampled series' observation mask, padded steps) are hatched in every panel
    (no input point, no bar, no map colour: every map's score there is taken as none, and the note says what the
    hatching means); with ``data.times`` the time axis is labelled with each step's time stamp (the steps drawn
    evenly), else with the steps' indices.

    One map: one figure per sample, tagged ``maps/sample_<i>``. Several maps (the causal effect beside
    each Captum method, Sobol' first-order and total indices): one figure per sample and map, tagged
    ``maps/sample_<i>/<map>`` (the map's name made tag-safe) and titled with the map's name, each one
    panel (or input and heatmap) high: stacked in one figure they were scaled down to a TensorBoard
    card's height (about 215 pixels) until no text could be read.

    Args:
        data: the maps ``[N, ...]`` and the probe inputs ``[N, T]`` / ``[N, A, B]`` they explain.
        layout: ``"first"`` or ``"last"``, as above; ``None``: :func:`sequence_layout`.
        reuse: give the figures one at a time (an iterator), a one-channel sample's figure redrawing an earlier sample's of
            the same map panels, scales, maps of 0 only, note and title height, its line's and bars' data and title
            replaced and laid out again from the subplot parameters it was built with (its input axis scales to the
            sample: its tick labels differ), as
            :func:`~lightning_causal.reporting.image_figures.heatmap_row`'s ``reuse``: for a caller that draws or saves
            each figure before taking the next (the TensorBoard writer's path), never one that keeps them.

    Examples:
        >>> import torch
        >>> d = MapData(torch.rand(2, 1, 32), {"causal": torch.randn(2, 1, 32), "Saliency": torch.rand(2, 1, 32)}, "cb")
        >>> [tag for tag, _ in sequence_maps(d)]
        ['maps/sample_0/causal', 'maps/sample_0/Saliency', 'maps/sample_1/causal', 'maps/sample_1/Saliency']
        >>> [tag for tag, _ in sequence_maps(MapData(d.inputs, {"causal": d.maps["causal"]}, "ie"))]
        ['maps/sample_0', 'maps/sample_1']
    """
    figures = _sequence_maps(data, layout, reuse)
    return figures if reuse else list(figures)


def _sequence_maps(data: MapData, layout: str | None, reuse: bool) -> Iterator[tuple[str, Figure]]:
    n, glob = drawn_samples(data)
    last = data.inputs.dim() == 3 and (layout or sequence_layout("sequence", data.inputs)) == "last"
    word = "feature" if last else "channel"
    rows = data.meta.get("last_names" if last else "channel_names")  # feature_names= of groups that are whole rows
    rows = list(rows) if isinstance(rows, (list, tuple)) and len(rows) == _row_count(data.inputs, last) else None
    gone = _unobserved(data, n, glob)  # [n, ...] of the inputs' shape, or None
    # no score at the hidden entries; on the CPU, as `gone` is (the maps of a fit on a GPU are on its device)
    on_cpu = {name: m[: max(1, n)].detach().float().cpu() for name, m in data.maps.items()}  # one CPU copy a map
    seen = {name: _observed(m, gone) for name, m in on_cpu.items()}
    limits = map_limits(data, seen)
    scales = {name: map_scale(m, limits[name]) for name, m in seen.items()}  # one per map, shared by the samples; its
    # sign too from the observed entries (a score below 0 at an unobserved one drew a diverging scale of no blue cell)
    names = list(data.maps)
    single = len(names) == 1
    suffixes = dict(zip(names, map_tags(names, data.meta.get("methods") or ())))
    kept: dict | None = {} if reuse else None
    for i in range(n):
        x = data.inputs[i].detach().float().cpu()
        x = x.unsqueeze(0) if x.dim() == 1 else x.T if last else x  # [C, T]
        hidden = None if gone is None else gone[i].T if last else gone[i].reshape(x.shape)  # [C, T]
        hidden = hidden if hidden is not None and bool(hidden.any()) else None
        maps = {name: _observed(m[i].reshape(data.inputs.shape[1:]).T if last else m[i].reshape(x.shape), hidden)
                for name, m in on_cpu.items()}
        title = global_title(data) if glob else sample_title(data, i)
        marks = _Marks(hidden, _stamps(data, i, x.shape[-1], glob))
        for group in [names] if single else [[name] for name in names]:
            drawn = {name: maps[name] for name in group}
            tag = f"maps/sample_{i}" if single else f"maps/sample_{i}/{suffixes[group[0]]}"
            yield tag, _sequence_figure(x, drawn, scales, word, last, title if single else f"{group[0]}: {title}", data, kept, marks,
                                        rows)



class _Marks:
    """What a sample's figure draws apart: ``hidden`` ``[C, T]`` (the entries the model ignores, hatched) and
    ``stamps`` (each step's time stamp, the time axis' labels), either ``None``."""

    def __init__(self, hidden: Tensor | None = None, stamps: list[float] | None = None) -> None:
        self.hidden, self.stamps = hidden, stamps


#: the note under a figure with hatched entries
HATCHED_NOTE = "hatched: not observed or padding (the model is told to ignore them): no input drawn, no score"
HATCH = "0.6"  # the hatching's grey


def _unobserved(data: MapData, n: int, glob: bool) -> Tensor | None:
    """``data.unobserved`` of the ``n`` drawn samples, of the inputs' shape (``None``: none given, maps over the whole
    probe, or a shape that does not broadcast to the inputs')."""
    u = data.unobserved
    if u is None or glob or n == 0:
        return None
    try:
        return u[:n].detach().cpu().bool().expand(n, *data.inputs.shape[1:])
    except RuntimeError:
        return None


def _observed(m: Tensor, gone: Tensor | None) -> Tensor:
    """Map ``m`` with its scores at the ``gone`` entries set to 0 (no score: a Captum method's there is of no
    measurement; the effects are 0 already), for the scales, notes and bars."""
    return m if gone is None or gone.shape != m.shape else m.masked_fill(gone, 0.0)


def _stamps(data: MapData, i: int, steps: int, glob: bool) -> list[float] | None:
    """Sample ``i``'s time stamps (``data.times``) where it holds one per drawn step, else ``None``."""
    t = data.times
    if t is None or glob or t.dim() != 2 or int(t.shape[-1]) != steps or i >= t.shape[0]:
        return None
    return t[i].detach().double().cpu().tolist()


def _run_boxes(hidden: Tensor, span: bool) -> Path:
    """The runs of ``True`` along each row of ``hidden`` ``[C, T]`` as one compound path of rectangles (cells of 1,
    centred on their row and step; ``span``: from 0 to 1 in height, a panel's whole height in axes units)."""
    edges = torch.nn.functional.pad(hidden.int(), (1, 1)).diff(dim=1)  # +1 where a run starts, -1 after it ends
    starts, stops = (edges == 1).nonzero().double(), (edges == -1).nonzero().double()  # row-major: k-th start, k-th stop
    x0, x1 = starts[:, 1] - 0.5, stops[:, 1] - 0.5
    y0 = torch.zeros_like(x0) if span else starts[:, 0] - 0.5
    y1 = y0 + 1.0
    corners = torch.stack([torch.stack(c, 1) for c in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))], 1)
    codes = [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY] * len(x0)
    return Path(corners.reshape(-1, 2).numpy(), codes)


def _hatch(ax: Any, hidden: Tensor, *, span: bool = False) -> Any:
    """Hatch the cells ``hidden`` ``[C, T]`` of a heatmap drawn on ``ax`` (rows down, steps across, cells of 1), white
    under the hatching; ``span``: whole steps of a one-row panel, its full height. The collection, or ``None``. The
    runs are one compound path, hatched in one pass (a collection of a rectangle per run drew each one's hatching on
    its own: 16 channels of 2000 steps half unobserved took 6.7 s a figure, /tmp/review_s37_lb/t1.py)."""
    if not bool(hidden.any()):
        return None
    style = {"transform": ax.get_xaxis_transform(), "zorder": 0.5} if span else {"zorder": 2.5}
    coll = PatchCollection([PathPatch(_run_boxes(hidden, span))], facecolor="white", edgecolor=HATCH, hatch="////",
                           linewidth=0.0, **style)
    ax.add_collection(coll, autolim=False)
    return coll


def _time_axis(ax: Any, stamps: list[float] | None) -> str | None:
    """Label the steps of ``ax``'s time axis with their time stamps: the axis label, or ``None`` without stamps."""
    if stamps is None:
        return None

    def stamp(v: float, _: Any) -> str:
        k = round(v)
        return f"{stamps[k]:.3g}" if abs(v - k) < 1e-6 and 0 <= k < len(stamps) else ""

    ax.xaxis.set_major_formatter(FuncFormatter(stamp))
    return "time (each step at its time stamp; steps drawn evenly)"


def _line(ax: Any, x: Tensor, hidden: Tensor | None, **style: Any) -> None:
    """One channel ``x`` ``[T]`` as a line over its steps, only its observed ones where ``hidden`` ``[T]`` is given
    (each a dot: a value between two observations was not measured)."""
    if hidden is None:
        ax.plot(range(x.shape[-1]), x.tolist(), **style)
        return
    seen = (~hidden).nonzero().flatten()
    ax.plot(seen.tolist(), x[seen].tolist(), marker="o", markersize=2.5, **style)



def _row_count(inputs: Tensor, last: bool) -> int:
    """The rows of a sample's heatmap: its channels, or its features where laid out last."""
    return int(inputs.shape[-1] if last else inputs.shape[1]) if inputs.dim() == 3 else 1


def _sequence_figure(x: Tensor, maps: dict[str, Tensor], scales: dict[str, tuple[str, float, float]], word: str,
                     last: bool, title: str, data: MapData, kept: dict | None = None, marks: _Marks | None = None,
                     rows: list[str] | None = None) -> Figure:
    """One sample ``x`` ``[C, T]`` with ``maps`` (each ``[C, T]``), titled, with the sign note below. With ``kept``
    (``{}`` at first; the writer's path), a one-channel sample of the same panels, scales, maps of 0 only, note and
    title height as an earlier one redraws that one's figure (:func:`_redrawn_signal`,
    :mod:`~lightning_causal.reporting.kept_figures`). ``rows``: the channels' names on the heatmaps' rows
    (:func:`_signal_heatmaps`; ``None``: their indices)."""
    xlabel = "time step" if last else "step"  # the word of the card and the Sobol' tags (group_regions: "steps 10–19")
    lines = title_lines(title, int(_FIGURE_WIDTH * 11))
    note = sign_note({name: scales[name][0] == "RdBu_r" for name in maps}, data) if data.meta.get("targets") else None
    # a line per map of NaN/inf scores (figure_style's rule): no bar of one channel, a grey cell of a heatmap, ringed
    note = "\n".join(([note] if note else []) + not_finite_notes(maps, "no bar" if x.shape[0] == 1 else RINGED)) or None
    marks = marks or _Marks()
    if marks.hidden is not None:  # the legend word of the hatching
        note = f"{note}\n{HATCHED_NOTE}" if note else HATCHED_NOTE
    below = 0.2 + 0.15 * note.count("\n") if note else 0.0  # inches under the panels
    key = (tuple(x.shape), tuple((name, scales[name], not bool(m.ne(0).any())) for name, m in maps.items()), xlabel, len(lines), note)
    # the one-channel figure: a line and bars per map (a sample with hatched steps or time stamps: a figure of its own)
    bars = kept is not None and x.shape[0] == 1 and marks.hidden is None and marks.stamps is None
    again = kept_figure(kept, key, lines) if bars else None
    if again is not None:  # its layout put back to where a new figure's starts
        fig = again.figure
        _redrawn_signal(again.panels, x, maps)
    else:
        fig = (_signal_bars(x, maps, scales, xlabel, marks) if x.shape[0] == 1 else
               _signal_heatmaps(x, maps, scales, word, xlabel, marks, rows))
        fig.set_figheight(fig.get_figheight() + 0.25 * (len(lines) - 1))  # a long title wrapped, not cut at both edges
        suptitle = fig.suptitle("\n".join(lines), fontsize=11)
        if note:  # one small line below: what red and blue mean
            fig.set_figheight(fig.get_figheight() + below)
            fig.text(0.5, 0.02, note, ha="center", va="bottom", fontsize=8, color="0.3")
        if bars:  # (input axes, its twin) per map
            keep_figure(kept, key, fig, suptitle, list(zip(fig.axes[:len(maps)], fig.axes[len(maps):])))
    start = subplot_params(fig)
    fig.tight_layout(rect=(0.0, below / fig.get_figheight(), 1.0, 1.0))
    if again is None and x.shape[0] == 1 and _fit_names(fig.axes[len(maps):]):  # a long name wrapped: its room made
        fig.subplots_adjust(**start)  # laid out from where a kept figure's redraw starts: the same pixels
        fig.tight_layout(rect=(0.0, below / fig.get_figheight(), 1.0, 1.0))
    return fig



_FIGURE_WIDTH = WIDTH * 1.15  # inches: a sequence's figure
DENSE_LINE = "0.65"  # the grey of a signal of more than MAX_BARS steps under its map's bars


def _redrawn_signal(pairs: list[tuple[Any, Any]], x: Tensor, maps: dict[str, Tensor]) -> None:
    """Put sample ``x`` ``[1, T]`` and its ``maps`` in the panels ``pairs`` (the input's axes and the twin holding the
    map's bars, per map) that :func:`_signal_bars` drew of another sample: the line's data (its axes scaled to it
    again, as a new line's are at the draw) and the bars (:func:`~lightning_causal.reporting.figure_style.step_bars`
    given the artists it drew)."""
    t = list(range(x.shape[-1]))
    for (ax, twin), m in zip(pairs, maps.values()):
        ax.get_lines()[0].set_data(t, x[0].tolist())
        ax.relim()
        ax.autoscale(enable=None)  # scaled at the draw, as a new line's axes are
        step_bars(twin, m[0].tolist(), (POS, NEG), bars=twin.patches)


def _signal_bars(x: Tensor, maps: dict[str, Tensor], scales: dict[str, tuple[str, float, float]], xlabel: str,
                 marks: _Marks | None = None) -> Figure:
    """One channel ``[1, T]``: a panel per map, the input as a line and the map as bars; hidden steps hatched."""
    marks = marks or _Marks()
    fig = Figure(figsize=(_FIGURE_WIDTH, 0.8 + 1.2 * len(maps)))
    axes = fig.subplots(len(maps), 1, squeeze=False, sharex=True)[:, 0]
    # a line of more steps than its panel has pixels (a second of audio) is a solid block: black and 1.1 points wide, it
    # hid the bars drawn over it; light and thin, the bars stand out on it
    dense = x.shape[-1] > MAX_BARS
    for ax, (name, m) in zip(axes, maps.items()):
        _line(ax, x[0], None if marks.hidden is None else marks.hidden[0], color=DENSE_LINE if dense else "black",
              linewidth=0.5 if dense else 1.1)
        if marks.hidden is not None:
            _hatch(ax, marks.hidden, span=True)
        ax.set_ylabel("input", fontsize=9)
        twin = ax.twinx()
        step_bars(twin, m[0].tolist(), (POS, NEG), alpha=0.45)  # a long signal: one outline per sign
        _, low, high = scales[name]
        twin.set_ylim(low, high)  # an unsigned map (Saliency, a total Sobol' index) from 0: no negative half
        twin.set_ylabel(name, fontsize=9)
        twin.tick_params(labelsize=8)
        say_all_zero(twin, m[0])  # no bars: says why
        ax.tick_params(labelsize=8)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))  # steps, not 2.5
    axes[-1].set_xlabel(_time_axis(axes[-1], marks.stamps) or xlabel, fontsize=10)
    return fig



def _fit_names(twins: list[Any]) -> bool:
    """Fit each map's name on the right-hand axis of its bars (``twins``, laid out) into the axes' height: a name
    longer than it (a method of one's own of 40 characters at 9 pt ran past the panel, over the title and the note)
    is broken into lines at its words (spaces, ``_``, ``-``, ``.``, a capital after a small letter), at 9, 8 or 7 pt,
    at most 3 lines, the last cut with "…" where 3 lines of 7 pt do not hold it. Whether any name was changed."""
    changed = False
    for twin in twins:
        label = twin.yaxis.label
        name = label.get_text()
        room = twin.get_position().height * twin.figure.get_figheight() * 72.0 * 0.95  # points
        if not name or _width(name, label.get_fontsize()) <= room:
            continue
        for size in (9.0, 8.0, 7.0):
            lines = _name_lines(name, size, room)
            if len(lines) <= 3:
                break
        if len(lines) > 3:  # cut: the third line's end, as long as it fits with the ellipsis
            last = "".join(lines[2:])
            while last and _width(last + "…", size) > room:
                last = last[:-1]
            lines = lines[:2] + [last.rstrip() + "…"]
        label.set_text("\n".join(line.rstrip() for line in lines))
        label.set_fontsize(size)
        changed = True
    return changed


def _width(text: str, size: float) -> float:
    """The width of ``text`` in points at ``size`` points (the figures' font, no renderer needed)."""
    return text_to_path.get_text_width_height_descent(text, FontProperties(size=size), ismath=False)[0]


def _name_lines(name: str, size: float, room: float) -> list[str]:
    """``name`` broken into lines of at most ``room`` points at ``size`` points: at its words where it has them (each
    line keeps the space it ends with), a word longer than a line cut where it reaches the line's end."""
    words = [w for w in re.split(r"(?<=[\s_.\-])|(?<=[a-z0-9])(?=[A-Z])", name) if w]
    lines: list[str] = []
    line = ""
    for word in words:
        while word:
            if _width(line + word, size) <= room:
                line, word = line + word, ""
            elif line:
                lines.append(line)
                line = ""
            else:  # a word longer than a line: as much of it as fits
                cut = max(1, max((k for k in range(1, len(word) + 1) if _width(word[:k], size) <= room), default=1))
                lines.append(word[:cut])
                word = word[cut:]
    return lines + [line] if line.strip() else lines


def _signal_heatmaps(x: Tensor, maps: dict[str, Tensor], scales: dict[str, tuple[str, float, float]], word: str,
                     xlabel: str, marks: _Marks | None = None, row_names: list[str] | None = None) -> Figure:
    """Several channels ``[C, T]``: the input on top, then each map as a ``[C, T]`` heatmap; hidden entries hatched.
    ``row_names``: each channel's name (the audit's ``feature_names`` where each channel is a group: EEG electrodes), on the
    legend or the heatmaps' row ticks in place of its index."""
    marks = marks or _Marks()
    c, t = x.shape
    extent = (-0.5, t - 0.5, c - 0.5, -0.5)
    rows = 1 + len(maps)
    # inches: the input 0.85, each heatmap 0.75 + 0.03 per row; one map of three features comes to about
    # 600 x 290 pixels with title and note, the aspect of a TensorBoard card (scaled to its width, not its height)
    heights = [0.85] + [0.75 + 0.03 * c] * len(maps)
    fig = Figure(figsize=(_FIGURE_WIDTH, 0.75 + sum(heights) + 0.15 * len(maps)))  # each map's name above its panel
    axes = fig.subplots(rows, 1, squeeze=False, sharex=True, gridspec_kw={"height_ratios": heights})[:, 0]
    if c <= 4:
        for k in range(c):
            _line(axes[0], x[k], None if marks.hidden is None else marks.hidden[k], color=SERIES_COLOURS[k], linewidth=1.1,
                  label=short_label(row_names[k], 20) if row_names else f"{word} {k}")
        # above the panel, in one row (inside its upper left corner it covered the lines: 328 of 1024 points of four
        # channels over 256 steps); tight_layout makes its room under the title
        axes[0].legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=c, frameon=False, borderaxespad=0.1,
                       handlelength=1.5, columnspacing=1.2)
    else:
        im = axes[0].imshow(x.numpy(), aspect="auto", cmap="viridis", interpolation="nearest", extent=extent)
        _side_colorbar(fig, axes[0], im)
        if marks.hidden is not None:
            _hatch(axes[0], marks.hidden)
    axes[0].set_ylabel("input" if c <= 4 else f"input\n{word}", fontsize=9)  # a heatmap's rows: channels or features
    for ax, (name, m) in zip(axes[1:], maps.items()):
        cmap, vmin, vmax = scales[name]
        im = ax.imshow(m.numpy(), aspect="auto", cmap=not_finite_colours(cmap), vmin=vmin, vmax=vmax, interpolation="nearest", extent=extent)
        ring_not_finite(ax, m, square=False)  # NaN/inf grey and ringed (not_finite_marks), each of a few rows apart
        if marks.hidden is not None:  # over the cells the model ignores: no score
            _hatch(ax, marks.hidden)
        bar = _side_colorbar(fig, ax, im)
        say_all_zero(ax, m, bar) or say_no_finite(ax, m, bar)
        # the map's name whole above its panel (along the panel's height, 'IntegratedGradients' was cut to 12 characters)
        ax.set_title(short_label(name, 60), fontsize=8, loc="left", pad=2)
        ax.set_ylabel(word, fontsize=8)
    for ax in axes[int(c <= 4):]:
        ax.yaxis.set_major_locator(_RowTicks(c, 8.0))  # as many labelled rows as the panel's drawn height holds
        if row_names:  # a row's name, not its index
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: short_label(row_names[int(v)], 20) if 0 <= int(v) < len(row_names) else ""))
    for ax in axes:
        ax.tick_params(labelsize=8)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))  # steps, not 2.5
    axes[-1].set_xlabel(_time_axis(axes[-1], marks.stamps) or xlabel, fontsize=10)
    return fig



class _RowTicks(Locator):
    """Ticks at every ``step``-th of a heatmap's ``rows`` rows (0, step, 2 step, ...): the smallest step whose labels of
    ``size`` points are 1.25 sizes apart or more at the axes' height when drawn (8 features' labels 0-7 on a panel
    of 55 pixels overlapped)."""

    def __init__(self, rows: int, size: float) -> None:
        self.rows, self.size = rows, size

    def __call__(self) -> list[int]:
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin: float, vmax: float) -> list[int]:
        """The ticks between ``vmin`` and ``vmax`` (either order: a heatmap's rows go down), at the step of the axes'
        drawn height (every row where the locator is on no axis yet)."""
        axes = self.axis.axes if self.axis is not None else None
        height = axes.bbox.height * 72.0 / axes.figure.dpi if axes is not None else 0.0  # points
        step = max(1, math.ceil(self.rows * 1.25 * self.size / height)) if height > 0 else 1
        low, high = min(vmin, vmax), max(vmin, vmax)
        return [r for r in range(0, self.rows, step) if low <= r <= high]


def _side_colorbar(fig: Figure, ax: Any, im: Any) -> Any:
    """A colour bar beside ``ax`` that leaves its width, so the panels' time axes stay aligned; returned."""
    cax = ax.inset_axes((1.01, 0.0, 0.02, 1.0))
    bar = fig.colorbar(im, cax=cax)
    bar.ax.tick_params(labelsize=7)
    return bar
