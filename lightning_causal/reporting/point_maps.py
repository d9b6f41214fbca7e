"""Attribution maps of point clouds ``[N, P, D]`` (``P`` points of ``D >= 2`` coordinates, as a PointNet
of linear layers takes them) or ``[N, D, P]`` (as one of ``Conv1d(D, ., 1)`` layers takes them); the
figure kind ``"points"``, chosen, never inferred: per sample the points scattered in space, each
coloured by its score, one panel per map."""

from __future__ import annotations

import textwrap
from functools import partial

from matplotlib.figure import Figure
from torch import Tensor

from lightning_causal.reporting.figure_style import NOT_FINITE, largest_first, title_lines
from lightning_causal.reporting.image_figures import say_all_zero, say_no_finite, strongest_channel
from lightning_causal.reporting.image_maps import map_scales, sample_figures
from lightning_causal.reporting.map_data import (
    MapData,
    drawn_samples,
    global_title,
    sample_title,
)

__all__ = ["point_maps", "point_scores", "points_last"]


def points_last(x: Tensor) -> Tensor:
    """A point cloud ``[N, P, D]`` as it is, or ``[N, D, P]`` (a ``Conv1d`` PointNet's layout) transposed
    to it: the coordinates are the shorter of the two axes (a cloud has more points than coordinates).

    Args:
        x: the inputs or a map ``[N, A, B]``.

    Examples:
        >>> import torch
        >>> points_last(torch.zeros(2, 64, 3)).shape, points_last(torch.zeros(2, 3, 64)).shape
        (torch.Size([2, 64, 3]), torch.Size([2, 64, 3]))
    """
    return x.transpose(1, 2) if x.shape[1] < x.shape[2] else x


def point_scores(maps: Tensor) -> Tensor:
    """Each point's score ``[..., P]`` of maps ``[..., P, D]``: its coordinate of largest |value|, with its
    sign (:func:`~lightning_causal.reporting.image_figures.strongest_channel`), so that a map of one group
    per point (every coordinate holding the group's effect) draws that effect, and a map per coordinate
    (Saliency without a mask) its strongest coordinate, as the image figures draw an RGB pixel.

    Args:
        maps: the maps, coordinates last.

    Examples:
        >>> import torch
        >>> point_scores(torch.tensor([[[0.5, 0.5, 0.5], [0.1, -0.7, 0.2]]])).tolist()
        [[0.5, -0.699999988079071]]
    """
    return strongest_channel(maps.detach().float().cpu(), -1)


#: inches left of a 2-D panel, right of its colour bar and below it, for their tick labels
_PLANE_MARGINS = (0.45, 0.55, 0.25)


def _scatter_figure(points: Tensor, maps: dict[str, Tensor], vmax: dict[str, float], signed: dict[str, bool],
                    title: str, note: str | None) -> Figure:
    """One sample's points ``[P, D]`` in one panel per map ``[P]``: 3-D (the first three coordinates) for
    ``D >= 3``, else the plane of the two; every point outlined in grey, so that points of score 0 (white)
    stay visible; a point of a NaN or infinite score a grey cross (figure_style's rule), under the others in 2-D and 3-D
    (in 3-D, matplotlib sorts the points of one collection by depth)."""
    three = points.shape[-1] >= 3
    n = len(maps)
    # a plane's tick labels lie outside its panel (a 3-D panel draws them inside): inches at the left for its y
    # labels (-0.75 at size 6), at the right for the colour bar's (-0.005 at size 8) and below for its x labels,
    # which margins of 2% and 4% cut off
    width = 2.9 * n + 0.3 + (0.0 if three else _PLANE_MARGINS[0] + _PLANE_MARGINS[1])
    left, right = (0.02, 0.98) if three else (_PLANE_MARGINS[0] / width, 1.0 - _PLANE_MARGINS[1] / width)
    lines = title_lines(title, max(16, int(width * 12)))
    notes = textwrap.wrap(note, max(16, int(width * 16))) if note else []
    below = 0.05 + 0.15 * len(notes) if notes else 0.0
    fig = Figure(figsize=(width, 2.7 + 0.3 * len(lines) + below + (0.0 if three else _PLANE_MARGINS[2])))
    p = points.detach().float().cpu()
    for k, (name, values) in enumerate(maps.items()):
        ax = fig.add_subplot(1, n, k + 1, **({"projection": "3d"} if three else {}))
        hi = vmax[name]
        cmap, lo = ("RdBu_r", -hi) if signed[name] else ("Reds", 0.0)
        dims, bad = range(3 if three else 2), ~values.isfinite()
        if bool(bad.any()):  # grey crosses, a collection of their own drawn first: a grey dot read as a pale blue one
            ax.scatter(*[p[bad, j].numpy() for j in dims], color=NOT_FINITE, marker="x", s=18, linewidths=1.0,
                       **({"depthshade": False} if three else {}))
        if three:  # collections in the order drawn (matplotlib's default sorts them by depth): the crosses under the points
            ax.computed_zorder = False
        order = [j for j in largest_first(values.abs(), len(values))[::-1] if not bad[j]]  # the strongest points last, on top
        coords = [p[order, j].numpy() for j in dims]
        sc = ax.scatter(*coords, c=values[order].numpy(), cmap=cmap, vmin=lo, vmax=hi, s=16, edgecolors="0.55", linewidths=0.3)
        ax.set_title(name, fontsize=10 if len(name) <= 16 else 8)
        ax.tick_params(labelsize=6)
        bar = fig.colorbar(sc, ax=ax, shrink=0.7, pad=0.12 if three else 0.04)
        bar.ax.tick_params(labelsize=8)
        say_all_zero(ax, values, bar) or say_no_finite(ax, values, bar)  # white or no points under a 0-1 scale: says why
    fig.suptitle("\n".join(lines), fontsize=11)
    if notes:
        fig.text(0.5, 0.02, "\n".join(notes), ha="center", va="bottom", fontsize=8, color="0.3")
    bottom = (0.04 if three else _PLANE_MARGINS[2] / fig.get_figheight()) + below / fig.get_figheight()
    fig.subplots_adjust(left=left, right=right, bottom=bottom, top=1.0 - 0.3 * (len(lines) + 0.5) / fig.get_figheight())
    return fig


def point_maps(data: MapData) -> list[tuple[str, Figure]]:
    """One scatter figure per sample, a panel per map with each point coloured by its score
    (:func:`point_scores`), ``maps/sample_<i>``; more than two maps (the causal effect beside two Captum
    methods): one figure per sample and map, ``maps/sample_<i>/<map>``, as the image figures do. One
    colour scale per map shared by the samples: symmetric and diverging for a signed map, from 0 for
    one without negative values (Saliency). The positions drawn are the sample's points (the first three
    coordinates), so that a point's place in the shape says what it is; maps over the whole probe
    (Sobol' indices, ``[1, P, D]``) are drawn on sample 0's points. A NaN or infinite score is a grey cross (×) under
    the points, counts towards no colour scale, and the note below says how many of the sample's scores of each map are
    not finite (:mod:`~lightning_causal.reporting.figure_style`'s rule for every map kind). Padded points
    (``data.unobserved``: an ``attention_mask``'s or node mask's 0, the points after ``lengths``; every coordinate
    of the point) are left out, of the scatter and of the colour scales (a cloud padded with zeros drew its padding as
    one point at the origin, coloured by its score), and the note says how many.

    Args:
        data: the maps ``[N, P, D]`` or ``[N, D, P]`` (``D >= 2``; :func:`points_last`) and the probe
            inputs they explain.

    Examples:
        >>> import torch
        >>> d = MapData(torch.randn(2, 16, 3), {"causal": torch.randn(2, 16, 3)}, "input_effect")
        >>> [tag for tag, _ in point_maps(d)]
        ['maps/sample_0', 'maps/sample_1']
    """
    n, glob = drawn_samples(data)
    scores = {k: point_scores(points_last(v[:n])) for k, v in data.maps.items()}  # [n, P] each
    points = points_last(data.inputs)
    padded = _padded_points(data, n, glob)  # [n, P], or None
    if padded is not None:  # their scores count towards no scale
        scores = {k: v.masked_fill(padded, 0.0) for k, v in scores.items()}
    vmax, signed, note = map_scales(data, scores)
    out = []
    for i in range(n):
        title = global_title(data) if glob else sample_title(data, i)
        real = slice(None) if padded is None else ~padded[i]
        maps = {k: v[i][real] for k, v in scores.items()}
        said = note
        if padded is not None and bool(padded[i].any()):
            left = f"{int(padded[i].sum())} of {padded.shape[1]} points are padding (the mask's 0): not drawn"
            said = f"{note}; {left}" if note else left
        out += sample_figures(data, i, maps, signed, said, partial(_scatter_figure, points[i][real], vmax=vmax, signed=signed, title=title),
                              drawn="grey crosses", title=title)
    return out


def _padded_points(data: MapData, n: int, glob: bool) -> Tensor | None:
    """Of the ``n`` drawn samples, the points ``[n, P]`` whose every coordinate ``data.unobserved`` marks (padding); ``None``
    where none is given, the maps are over the whole probe or it does not broadcast to the inputs."""
    if data.unobserved is None or glob or n == 0:
        return None
    try:
        marks = data.unobserved[:n].detach().cpu().bool().expand(n, *data.inputs.shape[1:])
    except RuntimeError:
        return None
    return points_last(marks).all(-1)
