"""Figures of images and maps: an input sample drawn in colour or grey, attribution heatmaps beside
their input (``heatmap_row``, with the colour scale of a signed or unsigned map, ``map_scale``) and
labelled grids of images (``image_grid_figure``); plain ``Figure`` objects (no pyplot state)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any, Literal, get_args

from matplotlib.figure import Figure
from matplotlib.text import Text
from torch import Tensor

from lightning_causal.causal.engine.checks import check_choice
from lightning_causal.reporting.figure_style import (
    POS,
    has_negative,
    not_finite_colours,
    short_label,
    short_labels,
    title_lines,
)
from lightning_causal.reporting.kept_figures import (
    keep_figure,
    kept_figure,
    style_key,
    subplot_params,
)
from lightning_causal.reporting.not_finite_marks import ring_not_finite

__all__ = [
    "MAX_COLUMNS", "ORIGINS", "ImageOrigin", "check_origin", "heatmap_row", "image_grid_figure", "largest_change", "map_scale", "reshow_input", "say_all_zero", "say_no_finite", "show_input",
    "strongest_channel",
    "to_image",
]


ImageOrigin = Literal["upper", "lower"]
#: the values ``image_origin`` takes: where row 0 of an image is drawn, matplotlib's ``imshow(origin=)``: ``"upper"``
#: at the top (a photograph's first row), ``"lower"`` at the bottom (a spectrogram ``[F, T]``' lowest frequency, as
#: ``librosa.display.specshow`` draws it)
ORIGINS: tuple[ImageOrigin, ...] = get_args(ImageOrigin)


def check_origin(value: Any, name: str = "image_origin", error: type[Exception] = ValueError) -> ImageOrigin:
    """``value`` if it is one of :data:`ORIGINS`, else ``error`` naming ``name``, the value and what is allowed.

    Args:
        value: the origin to check.
        name: the parameter's name, in the message.
        error: the exception raised (``MisconfigurationException`` in Lightning-facing code).

    Examples:
        >>> check_origin("lower")
        'lower'
        >>> check_origin("bottom")
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `image_origin` to be one of ['upper', 'lower'] but got 'bottom'
    """
    return check_choice(name, value, ORIGINS, error=error)


def to_image(x: Tensor) -> Tensor:
    """A 2-D image of one sample ``[C, H, W]`` / ``[H, W]`` (channels averaged).

    Args:
        x: one sample ``[C, H, W]`` or ``[H, W]``.
    """
    x = x.detach().float().cpu()
    return x.mean(0) if x.dim() == 3 else x


def largest_change(d: Tensor) -> Tensor:
    """A 2-D image of a signed change ``[C, H, W]`` / ``[H, W]``: per pixel the channel change of
    largest magnitude, with its sign (a red bar turned magenta shows its blue change in full; the
    channels' mean would show a third of it, and opposite changes of two channels would cancel).

    Args:
        d: the change ``[C, H, W]`` or ``[H, W]``.

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

    Args:
        maps: maps with a channel dimension.
        dim: that dimension.

    Examples:
        >>> import torch
        >>> strongest_channel(torch.tensor([[[0.9]], [[0.0]], [[-0.6]]]), 0).tolist()
        [[0.8999999761581421]]
    """
    return maps.gather(dim, maps.abs().argmax(dim, keepdim=True)).squeeze(dim)


def show_input(ax: Any, x: Tensor, origin: ImageOrigin = "upper") -> None:
    """Draw one input sample on ``ax``: ``[3, H, W]`` in colour, its range stretched to [0, 1] (the
    colour is often what a class is about), any other ``[C, H, W]`` / ``[H, W]`` in grey with the
    channels averaged; nearest-neighbour upscaling.

    Args:
        ax: a matplotlib ``Axes``.
        x: one sample ``[C, H, W]`` or ``[H, W]``.
        origin: where row 0 is drawn (:data:`ORIGINS`): ``"upper"`` at the top, ``"lower"`` at the bottom (a spectrogram).

    Examples:
        >>> import torch
        >>> ax = Figure().subplots()
        >>> show_input(ax, torch.stack([torch.ones(2, 2), torch.zeros(2, 2), -torch.ones(2, 2)]))
        >>> ax.get_images()[0].get_array()[0, 0].tolist()  # red, no green, no blue
        [1.0, 0.5, 0.0]
    """
    pixels, grey = _input_pixels(x)
    ax.imshow(pixels, cmap="gray" if grey else None, interpolation="nearest", origin=origin)


def _input_pixels(x: Tensor) -> tuple[Any, bool]:
    """What :func:`show_input` draws of sample ``x``: the array, and whether it is grey (a colour map's, scaled to its
    own range) or colour (``[H, W, 3]``, stretched to [0, 1] here)."""
    x = x.detach().float().cpu()
    if x.dim() == 3 and x.shape[0] == 3:
        img = x.permute(1, 2, 0)
        lo, hi = float(img.min()), float(img.max())
        return ((img - lo) / (hi - lo) if hi > lo else img * 0).numpy(), False
    return to_image(x).numpy(), True


MAX_COLUMNS = 4  # panels per row of a heatmap figure: more would shrink each map below legibility in a TensorBoard card
#: an image at least this many times as wide as it is high (a spectrogram of 64 bins x 400 frames) is drawn one panel
#: a row, each stretched to :data:`WIDE_PANEL` inches across and as high as its figure may be, between
#: :data:`WIDE_HEIGHT` and its height at scale: kept to scale beside the others, 64 x 400 took 145 x 23 pixels, 3 bins a
#: pixel
WIDE_RATIO = 3.0
WIDE_PANEL = 4.6  # inches across (with its colour bar and the figure's margins, 545 pixels)
WIDE_HEIGHT = 0.45  # inches at least, a panel of three rows (a Sobol' audit's input | total | first)
#: inches a figure of a wide image is at most high: a TensorBoard image card (about 400 x 215 pixels) shows 545 x 305
#: pixels at 0.7 of their size, as it shows the other images' figures
WIDE_FIGURE_HEIGHT = 3.05


def finite_peak(values: Tensor) -> float:
    """The largest finite |value| of ``values`` (0 where it has none): a map's colour limit, which one NaN or
    infinite pixel would otherwise make NaN, drawing every pixel on matplotlib's fallback scale (-0.1 to 0.1).

    Args:
        values: the map's values.

    Examples:
        >>> import torch
        >>> finite_peak(torch.tensor([float("nan"), -2.0, float("inf")])), finite_peak(torch.tensor([float("nan")]))
        (2.0, 0.0)
    """
    a = values.detach().float().abs()
    a = a[a.isfinite()]
    return float(a.max()) if a.numel() else 0.0


def map_scale(values: Tensor, limit: float | None = None) -> tuple[str, float, float]:
    """The colour map and range of an attribution map: a signed map (any value below 0) on the
    diverging ``RdBu_r`` centred at 0, ``[-v, v]``; an unsigned one (every value >= 0, such as
    Saliency's |gradient|) on the sequential ``Reds``, ``[0, v]`` (white at 0 in both, so half of a
    diverging scale is not spent on values that cannot occur); ``v = limit`` or the max finite
    |value| (:func:`finite_peak`).

    Args:
        values: the map's values.
        limit: ``v``, as above; ``None`` (or 0): the max finite |value|.

    Examples:
        >>> import torch
        >>> map_scale(torch.tensor([-1.0, 0.5])), map_scale(torch.tensor([0.0, 2.0])), map_scale(torch.zeros(2))
        (('RdBu_r', -1.0, 1.0), ('Reds', 0.0, 2.0), ('Reds', 0.0, 1.0))
    """
    v = values.detach().float()
    lim = limit or finite_peak(v) or 1.0
    return ("RdBu_r", -lim, lim) if has_negative(v) else ("Reds", 0.0, lim)  # a -inf signs no scale


def say_all_zero(ax: Any, values: Tensor, bar: Any = None) -> bool:
    """Write "0 everywhere" in the panel ``ax`` of a map whose ``values`` are all 0 (a gradient method on a model
    whose gradient is 0), and leave its colour bar ``bar`` one tick, at 0: blank under a 0-1 scale, it read as a
    faint map. Returns whether it did.

    Args:
        ax: the matplotlib ``Axes`` of the map.
        values: the map's values (any shape).
        bar: the map's ``Colorbar``, or ``None`` where the panel has none.

    Examples:
        >>> import torch
        >>> from matplotlib.figure import Figure
        >>> ax = Figure().subplots()
        >>> say_all_zero(ax, torch.zeros(3)), [t.get_text() for t in ax.texts]
        (True, ['0 everywhere'])
    """
    if _blank(values) != 1:
        return False
    if bar is not None:
        bar.set_ticks([0.0])
    text = getattr(ax, "text2D", ax.text)  # a 3-D panel's text takes (x, y, z, s): its text2D is the plane's
    text(0.5, 0.5, "0 everywhere", transform=ax.transAxes, ha="center", va="center", fontsize=8, color="0.3")
    return True


def say_no_finite(ax: Any, values: Tensor, bar: Any = None) -> bool:
    """Write "no finite values" in the panel ``ax`` of a map none of whose ``values`` is finite (every score NaN or
    infinite: the panel all grey, figure_style's rule), and hide its colour bar ``bar``: a scale of 0 to 1 (the scale
    of a map with no value to scale by, :func:`map_scale`) read as the map's. Returns whether it did.

    Args:
        ax: the matplotlib ``Axes`` of the map.
        values: the map's values (any shape).
        bar: the map's ``Colorbar``, or ``None`` where the panel has none.

    Examples:
        >>> import torch
        >>> from matplotlib.figure import Figure
        >>> ax = Figure().subplots()
        >>> say_no_finite(ax, torch.full((3,), float("nan"))), [t.get_text() for t in ax.texts]
        (True, ['no finite values'])
        >>> say_no_finite(ax, torch.tensor([float("nan"), 1.0]))
        False
    """
    if _blank(values) != 2:
        return False
    if bar is not None:
        bar.ax.set_visible(False)
    text = getattr(ax, "text2D", ax.text)  # a 3-D panel's text takes (x, y, z, s): its text2D is the plane's
    text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center", va="center", fontsize=8, color="0.2")
    return True


def _blank(values: Tensor) -> int:
    """What a map's panel says instead of a scale: 1 "0 everywhere" (:func:`say_all_zero`), 2 "no finite values"
    (:func:`say_no_finite`), 0 nothing; the one test of both, and of a kept row's key (a row kept for reuse holds the
    same)."""
    return 1 if not bool(values.ne(0).any()) else 2 if values.numel() and not bool(values.isfinite().any()) else 0


def heatmap_row(
    sample: Tensor, maps: dict[str, Tensor], vmax: dict[str, float] | None = None, title: str | None = None,
    *, signed: dict[str, bool] | None = None, note: str | None = None, layout: dict | None = None,
    origin: ImageOrigin = "upper", reuse: bool = False,
) -> Figure:
    """One probe sample: ``input | map_1 | map_2 | ...``, wrapped after :data:`MAX_COLUMNS` panels
    (input, causal and four Captum methods: two rows of panels, each still readable in a
    TensorBoard card); signed maps on a symmetric diverging scale, unsigned maps on a sequential
    scale from 0 (:func:`map_scale`; ``signed[name]`` decides, default: the map has a negative
    value), never clipped, one colour scale per map (``vmax[name]``, default the map's own max
    |value|). Panels keep the image's aspect ratio, the input and every map drawn with row 0 at ``origin``; an image at least :data:`WIDE_RATIO` times as wide as high (a spectrogram's frames) one panel a row, stretched to :data:`WIDE_PANEL` inches across and as high as a TensorBoard card shows at 0.7 of its size (:data:`WIDE_FIGURE_HEIGHT`); ``title`` above (e.g. which class the maps
    explain), ``note`` in one small line below (e.g. what the colours of a signed map mean). A map of 0 only (a
    gradient method on a model whose gradient is 0) says "0 everywhere" in its panel, its colour bar a tick at 0; a map
    of no finite score (all NaN) says "no finite values", its panel grey and no colour bar.

    Args:
        sample: one input ``[C, H, W]`` or ``[H, W]``.
        maps: name -> the sample's map, shaped like it.
        vmax: name -> the colour scale's limit, as above; ``None``: each map's own.
        title: the line above, or ``None``.
        signed: name -> whether the map is signed, as above; ``None``: from its values.
        note: the small line below, or ``None``.
        layout: a cache of subplot parameters shared by the rows of one call or more (``{}`` at first): a row of the
            same panels, colour scales, note and title height as an earlier one is laid out with that one's
            tight_layout parameters, pixel for pixel the same, without its own; ``None``: tight_layout always.
        origin: where row 0 of the input and of each map is drawn (:data:`ORIGINS`): ``"upper"`` at the top,
            ``"lower"`` at the bottom (a spectrogram's lowest frequency, as audio tools draw it).
        reuse: with ``layout``, a row of the same panels, colour maps, note, title height and maps of 0 only (or of no
            finite value) as an
            earlier one is that row's ``Figure`` again, its images' data, colour limits and title replaced and laid out
            again from the subplot parameters it was built with, as a new figure is (the same pixels as a figure of
            its own, without building its axes, ticks and colour bars: most of a row's cost; a row of other colour
            limits, such as a later audit epoch's, needs its own layout, as its colour bars' tick labels differ). Only
            for a caller that has drawn or saved each figure before asking for the next (the TensorBoard writer's
            path): the earlier figure no longer shows its own row (a figure not drawn since it was built is never reused).

    Examples:
        >>> import torch
        >>> fig = heatmap_row(torch.rand(1, 8, 8), {"causal": torch.randn(1, 8, 8)}, title="explains class 3")
        >>> len(fig.axes), [ax.get_title() for ax in fig.axes]  # input, map, colour bar
        (3, ['input', 'causal', ''])
    """
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    n = 1 + len(maps)
    h, w = int(sample.shape[-2]), int(sample.shape[-1])
    wide = w >= WIDE_RATIO * h  # one panel a row, stretched (a spectrogram's frames across)
    rows = n if wide else -(-n // MAX_COLUMNS)
    cols = -(-n // rows)
    cell = 1.45  # inches of image per panel along its longer side (a colour bar beside each map)
    width = ((WIDE_PANEL if wide else cell * min(w / h, 1.0)) + 0.45) * cols + 0.4
    lines = title_lines(title, max(16, int(width * 12))) if title else []  # about 12 characters of 11 pt per inch
    # the note wrapped to the figure's width (about 16 characters of 8 pt per inch): one line was cut at both
    # edges of a narrow figure (a map of [C, 1], a sequence of one step)
    notes = textwrap.wrap(note, max(16, int(width * 16))) if note else []
    below = 0.05 + 0.15 * len(notes) if notes else 0.0
    if wide:  # as high as the figure may be, 0.3 inches of each panel its title
        room = (WIDE_FIGURE_HEIGHT - 0.25 - 0.3 * len(lines) - below) / rows - 0.3
        height = max(min(WIDE_PANEL * h / w, room), WIDE_HEIGHT) + 0.3
    else:
        height = cell * min(h / w, 1.0) + 0.45  # the panel's title above
    figsize = (width, 0.25 + rows * height + 0.3 * len(lines) + below)
    images = [largest_change(m) for m in maps.values()]  # [C, H, W]: each pixel's channel of largest |value|
    scales = []
    for name, img in zip(maps, images):
        cmap, lo, hi = map_scale(img, (vmax or {}).get(name))
        if signed is not None and name in signed:
            cmap, lo = ("RdBu_r", -hi) if signed[name] else ("Reds", 0.0)
        scales.append((cmap, lo, hi))
    # the colour maps, not their limits: a row of other limits redraws the figure, laid out again (``_redrawn_row``)
    same = (tuple(sample.shape), tuple((name, tuple(m.shape), sc[0], _blank(m)) for (name, m), sc in zip(maps.items(), scales)),
            tuple(notes), figsize, len(lines), origin)
    rect = (0.0, below / figsize[1], 1.0, 1.0)
    kept = kept_figure(layout, same, lines) if reuse else None
    if kept is not None:
        _redrawn_row(kept.panels, sample, images, scales)
        _laid_out(kept.figure, rect, layout, _layout_key(sample, maps, kept.panels, notes), kept.title)
        return kept.figure
    fig = Figure(figsize=figsize)
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[n:]:
        fig.delaxes(ax)
    axes = axes[:n]
    show_input(axes[0], sample, origin)
    axes[0].set_title("input", fontsize=10)
    for ax, (name, m), img, (cmap, lo, hi) in zip(axes[1:], maps.items(), images, scales):
        im = ax.imshow(img.numpy(), cmap=not_finite_colours(cmap), vmin=lo, vmax=hi, interpolation="nearest", origin=origin)  # NaN/inf grey
        ax.set_aspect("auto" if wide else "equal")  # stretched to its panel, as audio tools draw a spectrogram
        ring_not_finite(ax, img)  # and ringed: one grey pixel among pale blue ones is hard to find
        ax.set_title(name, fontsize=10 if len(name) <= 16 else 8)
        bar_ax = make_axes_locatable(ax).append_axes("right", size="6%", pad=0.06)  # as tall as the image, whatever its aspect
        bar = fig.colorbar(im, cax=bar_ax)
        bar.ax.tick_params(labelsize=8)
        say_all_zero(ax, m, bar) or say_no_finite(ax, m, bar)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_aspect("auto" if wide else "equal")
    if wide:  # the input as wide as the maps above their colour bars: their frames line up
        make_axes_locatable(axes[0]).append_axes("right", size="6%", pad=0.06).set_axis_off()
    suptitle = fig.suptitle("\n".join(lines), fontsize=11) if lines else None
    if notes:
        fig.text(0.5, 0.02, "\n".join(notes), ha="center", va="bottom", fontsize=8, color="0.3")
    if reuse and layout is not None:  # kept before its layout: a later row is laid out again from here
        keep_figure(layout, same, fig, suptitle, axes)
    _laid_out(fig, rect, layout, _layout_key(sample, maps, axes, notes), suptitle)
    return fig


def _layout_key(sample: Tensor, maps: dict[str, Tensor], axes: list, notes: list[str]) -> tuple:
    """What a heatmap row's layout depends on besides its title's height (:func:`_laid_out`): the shapes, each map
    panel's title, colour limits and colour map (its colour bar's tick labels), and the note's lines."""
    return (tuple(sample.shape), tuple((name, tuple(m.shape), ax.get_title(), *ax.get_images()[0].get_clim(),
                                        ax.get_images()[0].get_cmap().name) for ax, (name, m) in zip(axes[1:], maps.items())),
            tuple(notes))


def _redrawn_row(panels: list, sample: Tensor, images: list[Tensor], scales: list[tuple[str, float, float]]) -> None:
    """Put ``sample`` and its maps' ``images`` on the colour limits of ``scales`` in the ``panels`` (input, map_1, ...)
    of a row of :func:`heatmap_row` kept from an earlier row of the same panels, colour maps and note
    (:mod:`~lightning_causal.reporting.kept_figures`): the input's grey scale set from the new sample as ``imshow``
    sets it, each map's colour bar following its image's limits."""
    reshow_input(panels[0].get_images()[0], sample)
    for ax, img, (_, lo, hi) in zip(panels[1:], images, scales):
        image = ax.get_images()[0]
        image.set_data(img.numpy())
        image.set_clim(lo, hi)  # its colour bar follows
        ring_not_finite(ax, img)  # the rings moved to this map's scores that are not finite


def reshow_input(image: Any, x: Tensor) -> None:
    """Put sample ``x`` in ``image`` (an ``AxesImage`` that :func:`show_input` drew of another sample of the same
    shape), as :func:`show_input` would draw it: colour stretched to [0, 1], or grey on the new sample's range.

    Args:
        image: the ``AxesImage``.
        x: one sample ``[C, H, W]`` or ``[H, W]``.
    """
    pixels, grey = _input_pixels(x)
    image.set_data(pixels)
    if grey:
        image.norm.autoscale(image.get_array())  # imshow's scale of the new grey image (its min and max)


def _laid_out(fig: Figure, rect: tuple[float, float, float, float], layout: dict | None, key: tuple, title: Text | None) -> None:
    """``fig.tight_layout(rect=rect)``, its subplot parameters kept in ``layout`` (when given) under ``key``
    and the suptitle's height: a later figure of the same key and title height (a heatmap row of another
    sample: the same panels, colour scales and note, only the image data and the title's text differ) gets
    them with ``subplots_adjust``, the same parameters without tight_layout's draw (about a third of a row's
    drawing; ``tests/reporting/test_fast_drawing.py`` pins the pixels equal); ``title``: the figure's suptitle, or
    ``None``. The parameters are kept under matplotlib's style too (:func:`~lightning_causal.reporting.kept_figures.style_key`):
    another style's fonts take other room."""
    if layout is None:
        fig.tight_layout(rect=rect)
        return
    key = (*key, tuple(fig.get_size_inches()), rect, None if title is None else title.get_window_extent().height, style_key())
    params = layout.get(key)
    if params is None:
        fig.tight_layout(rect=rect)
        layout[key] = subplot_params(fig)
    else:
        fig.subplots_adjust(**params)



_COLUMN_CHARS = 9  # characters of a line of a grid column's label (0.62 inch of 7-point text: ImageNet's 9-character ids)


def _column_labels(labels: list[str]) -> list[str]:
    """Grid column labels of lines of at most :data:`_COLUMN_CHARS` characters: the name (the first line) wrapped
    over two (``"n01440764\\ntench,…"``), cut apart (:func:`short_labels`) where two distinct names would read
    alike; the other lines (a flagging statistic) cut at their end."""
    heads = [label.split("\n") for label in labels]
    names = [h[0] for h in heads]

    def wrapped(name: str) -> str:
        return "\n".join(textwrap.wrap(name, _COLUMN_CHARS, max_lines=2, placeholder="…")) or name

    firsts = [wrapped(n) for n in names]
    if len(set(firsts)) < len(set(names)):  # distinct names alike in their first 17 characters
        firsts = [f"{t[:_COLUMN_CHARS]}\n{t[_COLUMN_CHARS:]}".strip() for t in short_labels(names, 2 * _COLUMN_CHARS - 1)]
    return ["\n".join([first] + [short_label(line, _COLUMN_CHARS) for line in h[1:]]) for first, h in zip(firsts, heads)]


def image_grid_figure(
    images: dict[str, Tensor], labels: Sequence[str] | None = None, title: str | None = None,
    highlight: Sequence[int] = (), *, max_columns: int = 10, origin: ImageOrigin = "upper",
) -> Figure:
    """Images upscaled (nearest neighbour, no smoothing) in a grid: one row per entry of ``images``
    (each ``[K, C, H, W]`` or ``[K, H, W]``, channels averaged unless RGB), one column per item
    labelled ``labels[k]`` (e.g. the class whose reversed trigger it is; a label's lines of more than 9 characters
    make 7-point labels, the name wrapped over two lines and kept apart from the others, :func:`_column_labels`);
    ``highlight`` frames items in red (flagged classes).

    Args:
        images: row name -> ``[K, C, H, W]`` or ``[K, H, W]``, as above.
        labels: one label per column; ``None``: none.
        title: the figure's title, or ``None``.
        highlight: the columns framed in red.
        max_columns: the most columns drawn.
        origin: where each image's row 0 is drawn (:data:`ORIGINS`), as :func:`show_input`'s.

    Examples:
        >>> import torch
        >>> fig = image_grid_figure({"mask": torch.rand(3, 1, 8, 8), "pattern": torch.rand(3, 1, 8, 8)}, ["a", "b", "c"], highlight=[1])
        >>> len(fig.axes), fig.axes[1].get_title()
        (6, 'b')
    """
    names = list(images)
    k = min(max_columns, min(int(v.shape[0]) for v in images.values()))
    labels = [str(label) for label in labels[:k]] if labels is not None else None
    long = labels is not None and any(len(line) > _COLUMN_CHARS for label in labels for line in label.split("\n"))
    if long:  # a column is 0.62 inch: 7-point labels, the names (first lines) over two lines, kept apart
        labels = _column_labels(labels)
    width = 1.0 + 0.62 * k
    lines = title_lines(title, max(12, int(width * 11))) if title else []  # a 3-class title ran past both edges
    fig = Figure(figsize=(width, 0.45 + 0.78 * len(names) + 0.3 * len(lines)))
    axes = fig.subplots(len(names), k, squeeze=False)
    for r, name in enumerate(names):
        for c in range(k):
            ax = axes[r][c]
            show_input(ax, images[name][c], origin)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(labels[c] if labels is not None else f"#{c}", fontsize=7 if long else 9,
                             color=POS if c in highlight else "black")
            if c in highlight:
                for spine in ax.spines.values():
                    spine.set_edgecolor(POS)
                    spine.set_linewidth(2.0)
        axes[r][0].set_ylabel(name, fontsize=10, rotation=0, ha="right", va="center")
    if lines:
        fig.suptitle("\n".join(lines), fontsize=11)
    fig.tight_layout(pad=0.4, h_pad=0.2, w_pad=0.2)
    return fig
